/**
 * The wasm heap (src/backends/wasm/heap.ts): freed blocks merge and serve allocations of other
 * sizes, the top comes back down, exact sizes are reused, and nothing is handed out twice.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WasmHeap } from '../../src/backends/wasm/heap.js';
import { createSharedMemory, HEAP_START } from '../../src/backends/wasm/kernels.js';

const heap = () => new WasmHeap(createSharedMemory(2, 4096));

describe('wasm heap', () => {
  it('a buffer that grows by a piece each call reuses the memory it frees (bounded reserve)', () => {
    const h = heap();
    let block = h.allocBytes(1 << 16);
    const piece = 1 << 14;
    for (let i = 2; i <= 200; i++) {
      const next = h.allocBytes((1 << 16) + i * piece); // the new, larger copy
      h.freeBytes(...block);
      block = next;
    }
    const live = block[1];
    assert.ok(h.reservedBytes - HEAP_START < 3 * live, `reserved ${h.reservedBytes} for ${live} live`);
  });

  it('merges free neighbours, splits larger blocks, and lowers the top when the last block goes', () => {
    const h = heap();
    const a = h.allocBytes(640);
    const b = h.allocBytes(640);
    const c = h.allocBytes(640);
    const top = h.reservedBytes;
    h.freeBytes(...a);
    h.freeBytes(...b); // merges with a: one free block of 1280 bytes
    assert.equal(h.freeBytesBelowTop, 1280);
    const d = h.allocBytes(1000); // fits the merged block (rounded to 1024), the rest stays free
    assert.equal(d[0], a[0]);
    assert.equal(h.freeBytesBelowTop, 256);
    assert.equal(h.reservedBytes, top);
    h.freeBytes(...c); // the last block: the top comes down to the free remainder, and below it
    h.freeBytes(...d);
    assert.equal(h.reservedBytes, HEAP_START);
    assert.equal(h.freeBytesBelowTop, 0);
    assert.equal(h.inUse, 0);
  });

  it('reuses an exact-size block first and never hands out overlapping blocks', () => {
    const h = heap();
    const keep = h.allocBytes(64);
    const x = h.allocBytes(4096);
    const guard = h.allocBytes(64); // keeps x away from the top
    h.freeBytes(...x);
    const again = h.allocBytes(4096);
    assert.equal(again[0], x[0]);
    // random traffic: live blocks never overlap
    const live = new Map<number, number>([keep, guard, again]);
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 2000; i++) {
      if (live.size > 0 && random() < 0.45) {
        const ptrs = [...live.keys()];
        const ptr = ptrs[Math.floor(random() * ptrs.length)]!;
        h.freeBytes(ptr, live.get(ptr)!);
        live.delete(ptr);
      } else {
        const [ptr, size] = h.allocBytes(1 + Math.floor(random() * 20000));
        for (const [p, s] of live) assert.ok(ptr + size <= p || p + s <= ptr, 'overlap');
        live.set(ptr, size);
      }
    }
    let inUse = 0;
    for (const s of live.values()) inUse += s;
    assert.equal(h.inUse, inUse);
  });
});
