// The seal on a verb's V8 code cache: only the bytes written for this bundle come back.
import { describe, expect, it } from 'vitest';
import { bundleIdentity, openCache, sealCache } from '../../scripts/boot/code-cache.js';

const bundle = bundleIdentity({ size: 1_416_908, mtimeMs: 1764545340123.5, ino: 42 });
const data = Buffer.from('v8 cached data, as createCachedData returns it');

describe('code cache seal', () => {
  it('gives back the cached data it sealed for the same bundle', () => {
    expect(openCache(bundle, sealCache(bundle, data))).toEqual(data);
  });

  it('refuses a cache sealed for a rebuilt bundle', () => {
    const rebuilt = bundleIdentity({ size: 1_416_908, mtimeMs: 1764545399000, ino: 42 });
    expect(openCache(rebuilt, sealCache(bundle, data))).toBeNull();
  });

  it('refuses a cache with one byte changed, a truncated one, and an empty one', () => {
    const sealed = sealCache(bundle, data);
    const flipped = Buffer.from(sealed);
    flipped[40] = flipped[40]! ^ 1;
    expect(openCache(bundle, flipped)).toBeNull();
    expect(openCache(bundle, sealed.subarray(0, sealed.length - 1))).toBeNull();
    expect(openCache(bundle, sealed.subarray(0, 32))).toBeNull();
    expect(openCache(bundle, Buffer.alloc(0))).toBeNull();
  });

  it('names the node that compiled it', () => {
    expect(bundle).toContain(process.version);
  });
});
