import { fileURLToPath } from 'node:url';
import { loadDataset } from '@litter/dataset';
import { it } from 'vitest';
const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/blender-three-wide', import.meta.url));
it('x', async () => { const d = await loadDataset(FIXTURE, { width: 32, height: 24, cache: false }); console.log(d.vocabulary, Array.from(d.boxes.subarray(0, 12)), Array.from(d.boxMask.subarray(0, 3)), Array.from(d.labels.subarray(0,3))); });
