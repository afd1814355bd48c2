// Preloaded into a `litter` child (`node --import`): when the process exits, its peak resident memory (VmHWM of
// /proc/self/status, all threads together) goes to the file named by LITTER_TEST_PEAK_FILE, in kB.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.LITTER_TEST_PEAK_FILE;
if (file) {
  process.on('exit', () => {
    const status = readFileSync('/proc/self/status', 'utf8');
    writeFileSync(file, /VmHWM:\s+(\d+)/.exec(status)?.[1] ?? '');
  });
}
