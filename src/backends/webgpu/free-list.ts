/**
 * The WebGPU buffer pool's pieces that need no device: size classes, and the free list of one
 * class that hands out the lowest buffer id first (so a computation that repeats — a training
 * step, a stream's next piece — gets the same buffers in the same places, and its bind groups
 * repeat too).
 */

/** The byte size class of a request: at least 256, then four steps per power of two (≤ 25% waste). */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = Math.max(256, p / 4);
  return Math.ceil(bytes / step) * step;
}

/**
 * The free buffers of one size class, lowest id (oldest) first: a computation that repeats (a
 * training step, a stream's next piece) then gets the same buffers in the same places each time,
 * so its bind groups repeat too.
 */
export class FreeList {
  private readonly heap: { id: number; gpu: GPUBuffer }[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** The lowest id, or Infinity when empty. */
  get top(): number {
    return this.heap[0]?.id ?? Number.POSITIVE_INFINITY;
  }

  push(id: number, gpu: GPUBuffer): void {
    const h = this.heap;
    h.push({ id, gpu });
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.id <= h[i]!.id) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  pop(): { id: number; gpu: GPUBuffer } | undefined {
    const h = this.heap;
    const first = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.id < h[m]!.id) m = l;
        if (r < h.length && h[r]!.id < h[m]!.id) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return first;
  }

  /** Empties the list, returning its buffers. */
  drain(): GPUBuffer[] {
    return this.heap.splice(0).map((e) => e.gpu);
  }
}
