// Child process of the SIGKILL test, run built like every worker and child of the tests (the test calls
// ensureBuilt first): loads a dataset so that its cache gets written, slowly through the
// LITTER_DATASET_TEST_WRITE_PAUSE_MS hook, and is killed by the test in the middle of the write.
import { loadDataset } from '@litter/dataset';

const [dir, cachePath] = process.argv.slice(2);
await loadDataset(dir, { cachePath, workerThreads: false });
process.stdout.write('finished\n');
