export type { Io } from './_io.js';
export { CliError, type CliErrorCode, ExitCode } from './errors.js';
export { litter, main } from './main.js';
