// `node --import ./test/_ts-register.mjs file.ts` runs this package's TypeScript sources in a plain Node
// process, for tests that need a real separate process (e.g. one killed with SIGKILL).
import { register } from 'node:module';

register('./_ts-loader.mjs', import.meta.url);
