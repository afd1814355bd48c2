import type * as tfl from '@tensorflow/tfjs-layers';
import type { BoxHead } from './box-head.js';
import { ModelError } from './errors.js';

/** What {@link ModelFactory.create} gets. */
export interface CreateModelOptions {
  /** Input images: float32 `[B, height, width, 3]` with values in [0, 1]. */
  inputShape: [height: number, width: number, channels: 3];
  /** Number of classes C (multi-label: one sigmoid logit each). */
  classes: number;
  /**
   * Add the factory's box head ({@link ModelFactory.boxHead}): the outputs become that head's (for the built-in
   * models the CenterNet head's `[B, C]` logits and `[B, h, w, C + 4]` centre map). Only for factories with
   * `supportsBoxes`.
   * @default false
   */
  boxes?: boolean;
  /** Seed for the weight initialisers, so that two models created with the same seed are identical. */
  seed?: number;
}

/**
 * A model package's one export: builds an untrained `tf.LayersModel`.
 *
 * The model's input is float32 `[B, H, W, 3]` in [0, 1]. Its output without boxes is `[B, C]` logits: apply a
 * sigmoid at prediction, never a softmax (multi-label). With `boxes: true` its outputs are those of
 * {@link ModelFactory.boxHead}, which the trainer trains and reads through that head's loss and decoder.
 * Custom layers must be registered with `tf.serialization.registerClass` and a custom box head with
 * `registerBoxHead` when the package is imported, so saved models load back and are read right.
 *
 * @example
 * import type { ModelFactory } from '@litter/model';
 * export const model: ModelFactory = {
 *   name: 'tiny', description: 'one conv layer', defaultInputSize: { width: 64, height: 64 }, supportsBoxes: false,
 *   create: ({ inputShape, classes }) => { ... return tfl.model({ inputs, outputs }); },
 * };
 * export default model;
 */
export interface ModelFactory {
  /** Short name shown in logs and stored in run configs, e.g. `seed-cnn`. */
  readonly name: string;
  /** One line for `litter models` / `--help`. */
  readonly description: string;
  /** The input size the model was designed for; the trainer uses it when the user gives none. */
  readonly defaultInputSize: { width: number; height: number };
  /** Whether `create({ boxes: true })` is supported. */
  readonly supportsBoxes: boolean;
  /**
   * The head `create({ boxes: true })` builds: its output layout, loss and decoder to one box per class. The
   * built-in models use `centerNetHead` (on their stride-8 or stride-4 feature map, see `addCenterNetHead`).
   * @default pooledBoxHead (one `[B, 5C]` output: logits, then 4C sigmoid box values)
   */
  readonly boxHead?: BoxHead;
  create(options: CreateModelOptions): tfl.LayersModel;
}

/** The members every {@link ModelFactory} has, with their types, for error messages. */
const CONTRACT_MEMBERS: readonly [keyof ModelFactory, string, (value: unknown) => boolean][] = [
  ['name', 'a non-empty string', (v) => typeof v === 'string' && v.length > 0],
  ['description', 'a string', (v) => typeof v === 'string'],
  ['defaultInputSize', '{ width, height } (positive integers)', (v) => isSize(v)],
  ['supportsBoxes', 'a boolean', (v) => typeof v === 'boolean'],
  ['create', 'a function (options) => tf.LayersModel', (v) => typeof v === 'function'],
  ['boxHead', 'nothing or a BoxHead { name, matches, loss, decode }', (v) => v === undefined || isBoxHead(v)],
];

function isBoxHead(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const { name, matches, loss, decode } = value as Record<string, unknown>;
  return (
    typeof name === 'string' &&
    typeof matches === 'function' &&
    typeof loss === 'function' &&
    typeof decode === 'function'
  );
}

function isSize(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const { width, height } = value as { width?: unknown; height?: unknown };
  return (
    Number.isInteger(width) && Number.isInteger(height) && (width as number) > 0 && (height as number) > 0
  );
}

/** The contract members `value` lacks or has with the wrong type, as readable strings; empty when it conforms. */
export function contractProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) {
    return [`expected an object (a ModelFactory), got ${value === null ? 'null' : typeof value}`];
  }
  const record = value as Record<string, unknown>;
  return CONTRACT_MEMBERS.filter(([key, , ok]) => !ok(record[key])).map(
    ([key, expected]) => `${key}: expected ${expected}, got ${describe(record[key])}`,
  );
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (missing)';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Whether `value` satisfies the {@link ModelFactory} contract (shape only; `create` is not called). */
export function isModelFactory(value: unknown): value is ModelFactory {
  return contractProblems(value).length === 0;
}

/**
 * Checks what a factory got, so every model package reports bad options the same way. Call it first thing in
 * `create`.
 *
 * @throws {ModelError} `invalid-options` for a bad shape or class count, `unsupported` for `boxes: true` on a
 *   factory without a box head.
 */
export function checkCreateOptions(
  factory: Pick<ModelFactory, 'name' | 'supportsBoxes'>,
  options: CreateModelOptions,
): void {
  const { inputShape, classes, boxes } = options ?? ({} as CreateModelOptions);
  const [height, width, channels] = Array.isArray(inputShape) ? inputShape : [];
  const positive = (n: unknown) => Number.isInteger(n) && (n as number) > 0;
  if (
    !Array.isArray(inputShape) ||
    inputShape.length !== 3 ||
    !positive(height) ||
    !positive(width) ||
    channels !== 3
  ) {
    throw new ModelError(
      'invalid-options',
      `${factory.name}: inputShape must be [height, width, 3] with positive integer height and width, got ${JSON.stringify(inputShape)}`,
    );
  }
  if (!positive(classes)) {
    throw new ModelError(
      'invalid-options',
      `${factory.name}: classes must be a positive integer, got ${String(classes)}`,
    );
  }
  if (boxes === true && !factory.supportsBoxes) {
    throw new ModelError(
      'unsupported',
      `${factory.name} has no box head (supportsBoxes is false): train without boxes or pick another model`,
    );
  }
}
