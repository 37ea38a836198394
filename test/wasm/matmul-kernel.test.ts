import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import * as fc from 'fast-check';
import {
  compileKernels,
  createSharedMemory,
  HEAP_START,
  instantiateKernels,
  KERNELS_MAX_PAGES,
  type KernelExports,
  WASM_PAGE_BYTES,
} from '../../src/backends/wasm/kernels.js';

// One shared memory for the whole file (each shared memory reserves address space for its maximum).
const module = compileKernels();
const memory = createSharedMemory(2, 16384);
const kernels = instantiateKernels(module, memory);

const GUARD_FLOATS = 16;
const GUARD_BITS = 0x7fc0beef; // a NaN payload no arithmetic produces

/** Bump allocator over the shared memory, starting at HEAP_START; grows the memory as needed. */
class Arena {
  private top = HEAP_START;
  private guards: number[] = [];

  reset(): void {
    this.top = HEAP_START;
    this.guards = [];
  }

  /** `floats` float32s at a 64-byte aligned address (also 16 when `offset16`), followed by a guard. */
  alloc(floats: number, offset16 = false): number {
    let start = Math.ceil(this.top / 64) * 64;
    if (offset16) start += 16;
    const guard = start + floats * 4;
    this.top = guard + GUARD_FLOATS * 4;
    const needPages = Math.ceil(this.top / WASM_PAGE_BYTES) - memory.buffer.byteLength / WASM_PAGE_BYTES;
    if (needPages > 0) memory.grow(needPages);
    new Int32Array(memory.buffer, guard, GUARD_FLOATS).fill(GUARD_BITS);
    this.guards.push(guard);
    return start;
  }

  f32(): Float32Array {
    return new Float32Array(memory.buffer);
  }

  /** Asserts that nothing wrote past the end of any region allocated since the last reset. */
  checkGuards(): void {
    const words = new Int32Array(memory.buffer);
    for (const g of this.guards) {
      for (let i = 0; i < GUARD_FLOATS; i++) {
        if (words[g / 4 + i] !== GUARD_BITS) assert.fail(`guard at byte ${g} overwritten (word ${i})`);
      }
    }
  }
}

const arena = new Arena();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

type Layout = 'row' | 'col' | 'strided';

interface Operand {
  ptr: number;
  rowStride: number;
  colStride: number;
}

/** Stores a rows x cols matrix with random values in the given layout (with `pad` extra per lead dim). */
function makeOperand(rows: number, cols: number, layout: Layout, pad: number, rand: () => number): Operand {
  let rowStride: number;
  let colStride: number;
  if (layout === 'row') [rowStride, colStride] = [cols + pad, 1];
  else if (layout === 'col') [rowStride, colStride] = [1, rows + pad];
  else [rowStride, colStride] = [2 * cols + pad + 1, 2];
  const size = (rows - 1) * rowStride + (cols - 1) * colStride + 1;
  const ptr = arena.alloc(size);
  const f = arena.f32();
  f.fill(Number.NaN, ptr / 4, ptr / 4 + size); // holes between elements must never be read
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) f[ptr / 4 + i * rowStride + j * colStride] = rand();
  }
  return { ptr, rowStride, colStride };
}

function at(f: Float32Array, x: Operand, i: number, j: number): number {
  return f[x.ptr / 4 + i * x.rowStride + j * x.colStride];
}

interface Problem {
  m: number;
  n: number;
  k: number;
  a: Operand;
  b: Operand;
  c: number;
}

function setup(
  m: number,
  n: number,
  k: number,
  aLayout: Layout,
  bLayout: Layout,
  seed: number,
  pad = 0,
): Problem {
  arena.reset();
  const rand = rng(seed);
  const a = makeOperand(m, k, aLayout, pad, rand);
  const b = makeOperand(k, n, bLayout, pad, rand);
  const c = arena.alloc(m * n, seed % 2 === 1);
  arena.f32().fill(Number.NaN, c / 4, c / 4 + m * n); // C is overwritten, never read
  return { m, n, k, a, b, c };
}

/** Runs rows [start, end) with its own scratch region, as one thread of a split would. */
function run(p: Problem, rowStart: number, rowEnd: number, k: KernelExports = kernels): void {
  const scratch = arena.alloc(k.matmulScratchBytes(p.m, p.n, p.k) / 4);
  k.matmul(
    p.a.ptr,
    p.b.ptr,
    p.c,
    p.m,
    p.n,
    p.k,
    p.a.rowStride,
    p.a.colStride,
    p.b.rowStride,
    p.b.colStride,
    rowStart,
    rowEnd,
    scratch,
  );
}

/** Compares rows [rowStart, rowEnd) of C with a float64 reference, to 1e-5 of sum_p |A[i,p] B[p,j]|. */
function checkRows(p: Problem, rowStart = 0, rowEnd = p.m): void {
  const f = arena.f32();
  const aRow = new Float64Array(p.k);
  const want = new Float64Array(p.n);
  const absSum = new Float64Array(p.n);
  for (let i = rowStart; i < rowEnd; i++) {
    for (let q = 0; q < p.k; q++) aRow[q] = at(f, p.a, i, q);
    want.fill(0);
    absSum.fill(0);
    for (let q = 0; q < p.k; q++) {
      const aiq = aRow[q];
      for (let j = 0; j < p.n; j++) {
        const prod = aiq * at(f, p.b, q, j);
        want[j] += prod;
        absSum[j] += Math.abs(prod);
      }
    }
    for (let j = 0; j < p.n; j++) {
      const got = f[p.c / 4 + i * p.n + j];
      if (!(Math.abs(got - want[j]) <= 1e-5 * absSum[j] + 1e-30)) {
        assert.fail(`${p.m}x${p.k}@${p.k}x${p.n}: C[${i},${j}] = ${got}, want ${want[j]}`);
      }
    }
  }
}

/** Asserts rows outside [rowStart, rowEnd) of C still hold the NaN the setup wrote. */
function checkUntouched(p: Problem, rowStart: number, rowEnd: number): void {
  const words = new Uint32Array(memory.buffer);
  const nanBits = new Uint32Array(new Float32Array([Number.NaN]).buffer)[0];
  for (let i = 0; i < p.m; i++) {
    if (i >= rowStart && i < rowEnd) continue;
    for (let j = 0; j < p.n; j++) {
      if (words[p.c / 4 + i * p.n + j] !== nanBits)
        assert.fail(`row ${i} outside [${rowStart}, ${rowEnd}) written`);
    }
  }
}

/** Splits [0, m) at the given fractions and runs each part with its own scratch. */
function runSplit(p: Problem, cuts: number[]): number[] {
  const bounds = [0, ...cuts.map((x) => Math.floor(x * p.m)).sort((x, y) => x - y), p.m];
  for (let s = 0; s + 1 < bounds.length; s++) run(p, bounds[s], bounds[s + 1]);
  return bounds;
}

/** The part of the global WebAssembly API read here (the project compiles without lib.dom). */
declare const WebAssembly: {
  Module: { imports(m: unknown): unknown[]; exports(m: unknown): { name: string }[] };
};

const layouts: Layout[] = ['row', 'col'];
const transposeCombos: [Layout, Layout][] = layouts.flatMap((x) =>
  layouts.map((y): [Layout, Layout] => [x, y]),
);

describe('wasm matmul kernel', () => {
  it('loads: one shared-memory import, two exports, and HEAP_START is page aligned', () => {
    assert.deepEqual(WebAssembly.Module.imports(module), [{ module: 'env', name: 'memory', kind: 'memory' }]);
    // Other kernel families (attention, …) share the module; matmul's two exports must be there.
    const exported = WebAssembly.Module.exports(module).map((e) => e.name);
    for (const name of ['matmul', 'matmulScratchBytes']) assert.ok(exported.includes(name), name);
    assert.ok(memory.buffer instanceof SharedArrayBuffer);
    assert.equal(HEAP_START % WASM_PAGE_BYTES, 0);
    assert.equal(compileKernels(), module, 'compileKernels caches its module');
  });

  it('createSharedMemory validates page counts; the module accepts the largest memory', () => {
    assert.throws(() => createSharedMemory(0, 1), RangeError);
    assert.throws(() => createSharedMemory(4, 2), RangeError);
    assert.throws(() => createSharedMemory(1, KERNELS_MAX_PAGES + 1), RangeError);
    assert.throws(() => createSharedMemory(1.5, 4), RangeError);
    const big = createSharedMemory(1, KERNELS_MAX_PAGES);
    assert.equal(typeof instantiateKernels(module, big).matmul, 'function');
  });

  it('instantiating again on the same memory does not write to it', () => {
    const words = new Int32Array(memory.buffer);
    const len = memory.buffer.byteLength / 4;
    for (let i = 0; i < len; i++) words[i] = (i * 2654435761) | 0;
    instantiateKernels(module, memory);
    instantiateKernels(module, memory);
    for (let i = 0; i < len; i++) if (words[i] !== ((i * 2654435761) | 0)) assert.fail(`word ${i} changed`);
  });

  it('matches a float64 reference on random shapes, layouts and row splits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 70 }),
        fc.constantFrom<Layout>('row', 'col', 'strided'),
        fc.constantFrom<Layout>('row', 'col', 'strided'),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 0, maxLength: 2 }),
        fc.nat(),
        (m, n, k, aLayout, bLayout, pad, cuts, seed) => {
          const p = setup(m, n, k, aLayout, bLayout, seed, pad);
          runSplit(p, cuts);
          checkRows(p);
          arena.checkGuards();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('matches the reference on the per-head memory shapes, all four transpose combinations', () => {
    const shapes: [number, number, number][] = [
      [4096, 256, 64],
      [16, 256, 64],
      [16, 256, 16],
      [64, 256, 16],
    ];
    let seed = 1;
    for (const [m, n, k] of shapes) {
      for (const [aLayout, bLayout] of transposeCombos) {
        const p = setup(m, n, k, aLayout, bLayout, seed++);
        runSplit(p, seed % 2 === 0 ? [0.5] : [0.3, 0.65]);
        checkRows(p);
        arena.checkGuards();
      }
    }
  });

  it('handles k, m and n larger than the cache blocks (k slabs accumulate, several row and column blocks)', () => {
    const shapes: [number, number, number][] = [
      [37, 45, 600], // 3 k slabs of 200
      [5, 9, 257], // 2 slabs of 129/128
      [300, 20, 40], // 3 row blocks
      [3, 4100, 3], // 9 column blocks of <= 512 (B strips packed lazily per block)
      [300, 1030, 40], // 3 row blocks x 3 column blocks, partial last strip: packed B reused across row blocks
      [1, 1, 1000],
      [130, 8, 1],
    ];
    let seed = 100;
    for (const [m, n, k] of shapes) {
      for (const [aLayout, bLayout] of transposeCombos) {
        const p = setup(m, n, k, aLayout, bLayout, seed++, 1);
        runSplit(p, [0.4]);
        checkRows(p);
        arena.checkGuards();
      }
    }
  });

  it('writes only rows [rowStart, rowEnd) and stays inside its scratch', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 300 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.nat(),
        (m, n, k, x, y, seed) => {
          const p = setup(m, n, k, 'row', 'row', seed);
          const rowStart = Math.floor(Math.min(x, y) * m);
          const rowEnd = Math.ceil(Math.max(x, y) * m);
          run(p, rowStart, rowEnd);
          checkRows(p, rowStart, rowEnd);
          checkUntouched(p, rowStart, rowEnd);
          arena.checkGuards();
        },
      ),
      { numRuns: 100 },
    );
  });

  it('clamps the row range and does nothing for an empty one', () => {
    const p = setup(6, 10, 7, 'row', 'row', 7);
    run(p, 4, 2);
    checkUntouched(p, 0, 0);
    run(p, -5, 3);
    checkRows(p, 0, 3);
    checkUntouched(p, 0, 3);
    run(p, 3, 99);
    checkRows(p);
    arena.checkGuards();
  });

  it('propagates NaN from A to its row and from B to its column', () => {
    for (const [m, n, k] of [
      [9, 13, 5],
      [8, 16, 300],
      [3, 5, 1],
    ] as [number, number, number][]) {
      for (const [aLayout, bLayout] of transposeCombos) {
        const p = setup(m, n, k, aLayout, bLayout, m + n + k);
        const f = arena.f32();
        const nanRow = m - 1;
        const nanCol = Math.floor(n / 2);
        f[p.a.ptr / 4 + nanRow * p.a.rowStride + (k - 1) * p.a.colStride] = Number.NaN;
        f[p.b.ptr / 4 + 0 * p.b.rowStride + nanCol * p.b.colStride] = Number.NaN;
        runSplit(p, [0.5]);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            const got = f[p.c / 4 + i * n + j];
            assert.equal(Number.isNaN(got), i === nanRow || j === nanCol, `C[${i},${j}] = ${got}`);
          }
        }
      }
    }
  });

  it('overwrites C and gives zeros for k = 0', () => {
    const p = setup(5, 11, 1, 'row', 'row', 3);
    run(p, 0, 5);
    checkRows(p);
    const q = { ...p, k: 0 };
    run(q, 1, 4);
    const f = arena.f32();
    for (let i = 1; i < 4; i++) for (let j = 0; j < 11; j++) assert.equal(f[p.c / 4 + i * 11 + j], 0);
    checkRows(p, 0, 1);
    checkRows(p, 4, 5);
  });

  it('scratch size covers the blocks and is 16-byte granular', () => {
    for (const [m, n, k] of [
      [1, 1, 1],
      [4096, 256, 64],
      [16, 256, 16],
      [100000, 100000, 100000],
    ]) {
      const bytes = kernels.matmulScratchBytes(m, n, k);
      assert.ok(bytes > 0 && bytes % 16 === 0, `${m}x${n}x${k}: ${bytes}`);
      assert.ok(bytes <= 5 * 1024 * 1024, `${m}x${n}x${k}: ${bytes}`);
    }
  });

  it('two instances on one memory agree', () => {
    const other = instantiateKernels(module, memory);
    const p = setup(33, 17, 29, 'col', 'row', 11);
    run(p, 0, p.m, other);
    checkRows(p);
  });

  it('worker threads sharing the module and memory compute disjoint row ranges', async () => {
    const p = setup(203, 96, 64, 'row', 'col', 5);
    const scratch = [0, 1, 2].map(() => arena.alloc(kernels.matmulScratchBytes(p.m, p.n, p.k) / 4));
    const bounds = [0, 70, 140, p.m];
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { module, memory, args } = workerData;
      const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
      kernels.matmul(...args);
      parentPort.postMessage('done');
    `;
    await Promise.all(
      scratch.map((s, t) => {
        const args = [
          ...[p.a.ptr, p.b.ptr, p.c, p.m, p.n, p.k],
          ...[p.a.rowStride, p.a.colStride, p.b.rowStride, p.b.colStride],
          ...[bounds[t], bounds[t + 1], s],
        ];
        const worker = new Worker(source, { eval: true, workerData: { module, memory, args } });
        return new Promise<void>((resolve, reject) => {
          worker.once('message', () => {
            void worker.terminate();
            resolve();
          });
          worker.once('error', reject);
        });
      }),
    );
    checkRows(p);
    arena.checkGuards();
  });
});
