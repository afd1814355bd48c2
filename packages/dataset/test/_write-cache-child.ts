// Child process of the SIGKILL test (run with --import ./test/_ts-register.mjs): loads a dataset so that its
// cache gets written, slowly through the LITTER_DATASET_TEST_WRITE_PAUSE_MS hook, and is killed by the test in
// the middle of the write.
import { loadDataset } from '../src/index.js';

const [dir, cachePath] = process.argv.slice(2) as [string, string];
await loadDataset(dir, { cachePath, workerThreads: false });
process.stdout.write('finished\n');
