/**
 * A typed array read in a hot loop where every index is in range: untyped, so that `noUncheckedIndexedAccess`
 * does not need a `!` on each access (the emitted JavaScript is the same either way).
 */
// biome-ignore lint/suspicious/noExplicitAny: untyped is the point
export type Unchecked = any;
