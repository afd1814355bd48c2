/**
 * The version of the dataset cache's file format (`_cache.ts` describes the layout). A cache of another version
 * is rebuilt; raise it with every change to what the cache holds or how.
 */
export const CACHE_FORMAT_VERSION = 1;
