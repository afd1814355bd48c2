export { CliError, type CliErrorCode, ExitCode } from './errors.js';
export type { Io } from './io.js';
export { litter, main } from './main.js';
