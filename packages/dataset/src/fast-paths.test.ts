// The hand-written fast paths (parsePlainlyValid, plainHeader) against the zod schemas they mirror, on
// generated input: whatever the schema rejects, the fast path leaves to it (undefined); whatever the fast path
// accepts, the schema accepts with the same result. For labels, every valid labels.json (JSON input) must take
// the fast path, so that zod only ever runs to report problems.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CacheHeader, headerSchema, plainHeader } from './_cache.js';
import { checkSchema, parsePlainlyValid } from './_labels.js';

/** Numbers near and beyond the edges of [0, 1], and values of other types. */
const coordinate = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) },
  { weight: 2, arbitrary: fc.constantFrom(0, 1, -0, -1e-9, 1 + 1e-9, 2, -1) },
  { weight: 1, arbitrary: fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.integer())) },
);
const boxKeys = ['x1', 'y1', 'x2', 'y2'] as const;
/** A box, usually complete, sometimes missing a coordinate or with an extra key; or something else. */
const box = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      { x1: coordinate, y1: coordinate, x2: coordinate, y2: coordinate, z: fc.integer() },
      { requiredKeys: [...boxKeys] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ x1: coordinate, y2: coordinate }) },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.array(coordinate)) },
);
/** Mesh names, including the ones that mean something to plain objects. */
const meshName = fc.oneof(
  fc.string(),
  fc.constantFrom('', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'Cube', '0', 'length'),
);
/** An object with these own keys (defineProperty, so that `__proto__` is an own key, as JSON.parse makes it). */
function ownObject(pairs: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of pairs) {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return object;
}
const meshes = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.tuple(meshName, box), { maxLength: 5 }).map(ownObject) },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.array(box), fc.string(), fc.integer()) },
);
const image = fc.oneof(
  { weight: 8, arbitrary: fc.string({ minLength: 1 }) },
  { weight: 1, arbitrary: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null)) },
);
const entry = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .record({ image, meshes, note: fc.string() }, { requiredKeys: [] })
      .map((value) => ownObject(Object.entries(value))),
  },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.string(), fc.array(fc.integer())) },
);
/** A labels.json's content as JSON.parse gives it (the round trip drops what JSON cannot hold). */
const labelsJson = fc
  .array(entry, { maxLength: 6 })
  .map((raw) => JSON.parse(JSON.stringify(raw)) as unknown[]);

describe('parsePlainlyValid agrees with the schema (labelsSchema and the `__proto__` check)', () => {
  it('on generated labels files (every valid one takes the fast path, with the same entries)', () => {
    let valid = 0;
    fc.assert(
      fc.property(labelsJson, (raw) => {
        const schema = checkSchema(raw, 0, raw, 'labels.json');
        const plain = parsePlainlyValid(raw);
        if (schema.problems.length > 0) {
          expect(plain).toBeUndefined();
          return;
        }
        valid++;
        expect(plain).toBeDefined();
        expect(plain).toStrictEqual(schema.entries);
        plain!.forEach((parsed, index) => {
          const source = raw[index] as { meshes: Record<string, unknown> };
          expect(Object.getPrototypeOf(parsed.meshes)).toBe(null);
          // Every mesh of the file, `__proto__` included, with its four coordinates only.
          expect(Object.keys(parsed.meshes)).toEqual(Object.keys(source.meshes));
          for (const name of Object.keys(parsed.meshes)) {
            const { x1, y1, x2, y2 } = source.meshes[name] as Record<string, number>;
            expect({ ...parsed.meshes[name] }).toStrictEqual({ x1, y1, x2, y2 });
          }
        });
      }),
      { numRuns: 3000, seed: 15 },
    );
    // The generator must reach both sides.
    expect(valid).toBeGreaterThan(300);
  });
});

/** A header as this version writes it. */
function validHeader(): CacheHeader {
  return {
    magic: 'litter-dataset-cache',
    formatVersion: 1,
    fingerprint: 'f'.repeat(64),
    createdAt: '2026-12-01T00:00:00.000Z',
    labelsHash: 'a'.repeat(64),
    key: { size: [32, 24], background: [0, 0, 0], vocabulary: 'auto', fullHash: false, skipBadImages: true },
    vocabulary: ['Cube', 'Sphere'],
    width: 32,
    height: 24,
    channels: 3,
    count: 2,
    entries: ['a.png', 'b.png', 'c.png'],
    skipped: [{ index: 2, reason: 'gone' }],
    sizes: new Float64Array([1, 2, -1]),
    mtimes: new Float64Array([1, 2, -1]),
    hashes: null,
    labels: new Float32Array(4),
    boxes: new Float32Array(16),
    boxMask: new Float32Array(4),
    pixelsByteLength: 2 * 32 * 24 * 3,
  };
}

/** Values of every kind the header's fields could wrongly hold (CBOR can decode all of these). */
const anyValue = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    0,
    -1,
    0.5,
    2 ** 53,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    3,
    'auto',
    true,
    null,
    undefined,
  ),
  fc.string(),
  fc.array(fc.oneof(fc.integer(), fc.string(), fc.double())),
  fc.tuple(fc.integer(), fc.integer()),
  fc.tuple(fc.double(), fc.double(), fc.double()),
  fc.constantFrom(
    new Float64Array(2),
    new Float32Array(2),
    new Uint8Array(2),
    [1, 2],
    [{ index: 1, reason: 'x' }],
  ),
  fc.array(
    fc.record({ index: fc.oneof(fc.integer(), fc.double()), reason: fc.oneof(fc.string(), fc.integer()) }),
  ),
  fc.object({ maxDepth: 1 }),
);
const topKeys = Object.keys(validHeader()) as (keyof CacheHeader)[];
const keyKeys = Object.keys(validHeader().key);
/** A valid header with some of its fields (top level or in `key`) replaced, removed or added. */
const mutatedHeader = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom(...topKeys), fc.constantFrom(...keyKeys.map((k) => `key.${k}`)), fc.string()),
      fc.oneof({ weight: 5, arbitrary: anyValue }, { weight: 1, arbitrary: fc.constant('<delete>') }),
    ),
    { minLength: 0, maxLength: 3 },
  )
  .map((changes) => {
    const header = validHeader() as unknown as Record<string, unknown>;
    const key = { ...(header.key as Record<string, unknown>) };
    header.key = key;
    for (const [field, value] of changes) {
      const [target, name] = field.startsWith('key.') ? [key, field.slice(4)] : [header, field];
      if (value === '<delete>') delete target[name];
      else
        Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
    }
    return header;
  });

describe('plainHeader agrees with headerSchema', () => {
  it('on generated headers (what it accepts, zod accepts with the same result)', () => {
    let accepted = 0;
    fc.assert(
      fc.property(mutatedHeader, (header) => {
        const zod = headerSchema.safeParse(header);
        const plain = plainHeader(header);
        if (!zod.success) {
          expect(plain).toBeUndefined();
          return;
        }
        if (plain) {
          accepted++;
          expect(plain.data).toStrictEqual(zod.data);
        }
      }),
      { numRuns: 3000, seed: 15 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});
