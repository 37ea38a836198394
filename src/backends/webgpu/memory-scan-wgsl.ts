/**
 * WGSL of the fused memory scan (SPEC §1, paper eq. 12–16; the chunk dual form of
 * src/memory/chunk-parallel.md), as a sequence of stage kernels per chunk piece (n tokens that
 * share the gradient weights G). Every stage kernel is one dispatch for ALL heads: workgroup
 * (head, tile) computes outputs x = tile·WG + lid of each of the stage's independent parts (a
 * matrix entry, a row or a column each). The dispatches of a piece run in order, so a stage reads
 * what the previous ones wrote. (One kernel per stage rather than one kernel with barriers: the
 * software driver's compile time grows faster than linearly with a kernel's size, and a real GPU
 * gets many workgroups per head.) The host (memory-scan.ts) sequences pieces and stages.
 *
 * Rows are tokens; layer 0 maps d → h, layer 1 (depth 2) h → d; depth 1 has one d × d layer
 * (then h = d). Buffers, per head (head-major, bound in windows of whole heads):
 *   tok   [q (T×d) | k | v | α (T) | η | θ]                       the call's inputs, packed
 *   st    slots of [W₀ | W₁ | S₀ | S₁] (2·WF floats), then G (WF)  piece-start states, and G
 *   sc    scratch regions (scanScratchFloats)                     one piece's intermediates
 *   out   the packed outputs (memoryScanOutputShapes): y rows      forward
 *   cot   their cotangent: dy rows                                backward
 *   dtok  like tok                                                backward: input gradients
 *   adj   2 slots like st's, then dG (WF)                         backward: state cotangents
 *
 * Forward of a piece (A[t,j] = Π_{i=j+1..t}(1−α_i), E likewise with η, β_t, m_t prefix products,
 * C = A E, γ = A m, P = C ⊙ θ_row):
 *   key pass at G:  Zk = K G₀, X₂ = φ(Zk), Δ₂ = 2(X₂ G₁ (+K) − V), Δ₁ = (Δ₂ G₁ᵀ) ⊙ φ'(Zk)
 *                   (depth 1: Δ₁ = 2(K G₀ (+K) − V));
 *   retrieval:      Z_l = β ⊙ R_l W_l + γ ⊙ R_l S_l − (P ⊙ R_l X_lᵀ) Δ_l, R₀ = Q, R₁ = φ(Z₀), y = Z_L (+Q);
 *   state:          W_l ← β_n W_l + γ_n S_l − X_lᵀ diag(P[n−1,:]) Δ_l, S_l ← m_n S_l − X_lᵀ diag(E[n−1,:] θ) Δ_l.
 * The backward (memory-scan-backward-wgsl.ts) recomputes these and runs each stage's adjoint in
 * reverse (the derivation of src/backends/wasm/assembly/memory.ts).
 */
import { entry, FLOAT_HELPERS, header, type StorageDecl } from './wgsl.js';

/** Invocations per workgroup of the stage kernels. */
export const SCAN_WORKGROUP = 64;
/** Parameter word holding the number of workgroups per head (every stage kernel). */
export const TILES_WORD = 31;

/** The bindings of the forward, state-only forward and backward kernels (binding 1, 2, …). */
const FORWARD_BINDINGS: readonly StorageDecl[] = [
  { name: 'tok', type: 'f32' },
  { name: 'st', type: 'f32', write: true },
  { name: 'sc', type: 'f32', write: true },
  { name: 'out', type: 'f32', write: true },
];
const ADVANCE_BINDINGS = FORWARD_BINDINGS.slice(0, 3);
export const BACKWARD_BINDINGS: readonly StorageDecl[] = [
  { name: 'tok', type: 'f32' },
  { name: 'st', type: 'f32' },
  { name: 'sc', type: 'f32', write: true },
  { name: 'cot', type: 'f32' },
  { name: 'dtok', type: 'f32', write: true },
  { name: 'adj', type: 'f32', write: true },
];

/** The per-head scratch regions: n × n matrices, n-vectors, n × max(d, h) rows, 3(d + h) partial sums. */
const SQUARES = ['A', 'E', 'C', 'M1', 'M2', 'H', 'dP', 'dA', 'dE'] as const;
const VECTORS = ['beta', 'mom', 'gamma', 'dBeta', 'dGamma', 'dMom', 'dEps'] as const;
const ROWS = [
  ...['Zk', 'X2', 'B', 'D1', 'D2', 'Zq', 'R2'],
  ...['dX1', 'dX2', 'dD1', 'dD2', 'dZ', 'U1', 'U2', 'XW0', 'XS0', 'XW1', 'XS1'],
] as const;

/** Floats of one head's scratch for pieces of up to n tokens. */
export function scanScratchFloats(n: number, d: number, h: number): number {
  return SQUARES.length * n * n + VECTORS.length * n + ROWS.length * n * Math.max(d, h) + 3 * (d + h);
}

/** A size of the piece: a product of n (tokens), d, h (['1']: one output). */
export type Count = readonly ('n' | 'd' | 'h' | '1')[];

/** One part of a stage: `count` outputs, output x computed by `body`. */
export interface Part {
  count: Count;
  body: string;
}

/** A compiled-ready stage kernel: its WGSL and the sizes of its parts (for the grid). */
export interface StageKernel {
  readonly source: string;
  readonly counts: readonly Count[];
}

export const part = (count: Count, body: string): Part => ({ count, body });

/** A WGSL expression reading element (row, column) of a matrix. */
export type Access = (row: string, column: string) => string;

export const Q: Access = (t, a) => `Q(${t}, ${a})`;
export const K: Access = (s, a) => `K(${s}, ${a})`;
export const R2: Access = (t, j) => `sc[rR2 + ${t} * h + ${j}]`;
export const X2: Access = (s, j) => `sc[rX2 + ${s} * h + ${j}]`;

/** Declarations every stage kernel shares: dimensions, bases, region offsets and accessors. */
function common(): string {
  const regions = [...SQUARES, ...VECTORS, ...ROWS, 'part'];
  const sizes = [
    ...SQUARES.map(() => 'n * n'),
    ...VECTORS.map(() => 'n'),
    ...ROWS.map(() => 'n * max(d, h)'),
  ];
  const assign = regions
    .map((r, i) => (i === 0 ? `  r${r} = base;` : `  r${r} = r${regions[i - 1]} + ${sizes[i - 1]};`))
    .join('\n');
  return `
var<private> n: u32;
var<private> d: u32;
var<private> h: u32;
var<private> WF: u32;
var<private> qb: u32;
var<private> kb: u32;
var<private> vb: u32;
var<private> alb: u32;
var<private> etb: u32;
var<private> thb: u32;
var<private> cur: u32;
var<private> gb: u32;
${regions.map((r) => `var<private> r${r}: u32;`).join('\n')}

fn placeRegions(base: u32) {
${assign}
}

// Head i's token rows start..start+n−1 in a [q | k | v | α | η | θ] block at tb.
fn placeTokens(tb: u32, T: u32, start: u32) {
  qb = tb + start * d;
  kb = qb + T * d;
  vb = kb + T * d;
  alb = tb + 3u * T * d + start;
  etb = alb + T;
  thb = etb + T;
}

fn Q(t: u32, a: u32) -> f32 { return tok[qb + t * d + a]; }
fn K(t: u32, a: u32) -> f32 { return tok[kb + t * d + a]; }
fn V(t: u32, a: u32) -> f32 { return tok[vb + t * d + a]; }
fn keep(t: u32) -> f32 { return 1.0 - tok[alb + t]; }
fn eta(t: u32) -> f32 { return tok[etb + t]; }
fn theta(t: u32) -> f32 { return tok[thb + t]; }
// The piece-start state (W, S) and the gradient weights G: layer 0 is d × h, layer 1 h × d.
fn W0(a: u32, j: u32) -> f32 { return st[cur + a * h + j]; }
fn S0(a: u32, j: u32) -> f32 { return st[cur + WF + a * h + j]; }
fn W1(j: u32, c: u32) -> f32 { return st[cur + d * h + j * d + c]; }
fn S1(j: u32, c: u32) -> f32 { return st[cur + WF + d * h + j * d + c]; }
fn G0(a: u32, j: u32) -> f32 { return st[gb + a * h + j]; }
fn G1(j: u32, c: u32) -> f32 { return st[gb + d * h + j * d + c]; }
// P[n−1, s] and ε_s = E[n−1, s] θ_s: the state update's token weights.
fn pRow(s: u32) -> f32 { return sc[rC + (n - 1u) * n + s] * theta(s); }
fn eps(s: u32) -> f32 { return sc[rE + (n - 1u) * n + s] * theta(s); }
`;
}

/**
 * A stage kernel: the shared declarations, the direction's bindings and setup, and each part
 * guarded by its count. φ is defined only where a part uses it, so stages that do not depend on
 * the activation (or on depth and residual) compile once for every variant.
 */
export function kernel(
  bindings: readonly StorageDecl[],
  privates: readonly string[],
  setup: string,
  parts: readonly Part[],
  activation: 'silu' | 'gelu',
): StageKernel {
  const used = parts.filter((p) => p.body.trim() !== '');
  const bodies = used.map((p) => `  if (x < ${p.count.join(' * ')}) {\n${p.body}\n  }`).join('\n');
  const phi = /\bphi\(/.test(bodies)
    ? `${FLOAT_HELPERS}\nfn phi(x: f32, order: u32) -> f32 { return ${activation === 'silu' ? 'siluD' : 'geluD'}(x, order); }`
    : '';
  const source = `${header(bindings)}
${phi}
${common()}
${privates.map((name) => `var<private> ${name}: u32;`).join('\n')}
${entry(
  SCAN_WORKGROUP,
  `  let tiles = P(${TILES_WORD}u);
  let i = group / tiles;
  if (i >= P(5u)) { return; }
  let x = (group % tiles) * ${SCAN_WORKGROUP}u + lid;
${setup}
${bodies}`,
)}`;
  return { source, counts: used.map((p) => p.count) };
}

// ---- the forward's parts ----------------------------------------------------------------------

/** Gate products by columns: A[t,j], E[t,j] for t ≥ j (the recurrence, no logs or division). */
export const gateColumns = part(
  ['n'],
  `    var a = 1.0;
    var e = 1.0;
    sc[rA + x * n + x] = 1.0;
    sc[rE + x * n + x] = 1.0;
    for (var t = x + 1u; t < n; t++) {
      a *= keep(t);
      e *= eta(t);
      sc[rA + t * n + x] = a;
      sc[rE + t * n + x] = e;
    }`,
);

/** C = A E (lower triangle). */
export const gateProducts = part(
  ['n', 'n'],
  `    let t = x / n; let s = x % n;
    if (s <= t) {
      var c = 0.0;
      for (var j = s; j <= t; j++) { c += sc[rA + t * n + j] * sc[rE + j * n + s]; }
      sc[rC + x] = c;
    }`,
);

/** β_t = (1−α₀) A[t,0], m_t = η₀ E[t,0]. */
export const prefixes = part(
  ['n'],
  '    sc[rbeta + x] = keep(0u) * sc[rA + x * n];\n    sc[rmom + x] = eta(0u) * sc[rE + x * n];',
);

/** γ_t = Σ_j A[t,j] m_j = η₀ C[t,0]. */
export const gamma = part(['n'], '    sc[rgamma + x] = eta(0u) * sc[rC + x * n];');

/** The key pass at G, first part: depth 2 Zk = K G₀ and X₂ = φ(Zk); depth 1 Δ₁ = 2(K G₀ (+K) − V). */
export function keyPassFirst(depth: number, residual: boolean): Part {
  if (depth === 2) {
    return part(
      ['n', 'h'],
      `    let t = x / h; let j = x % h;
    var z = 0.0;
    for (var a = 0u; a < d; a++) { z += K(t, a) * G0(a, j); }
    sc[rZk + x] = z;
    sc[rX2 + x] = phi(z, 0u);`,
    );
  }
  return part(
    ['n', 'd'],
    `    let t = x / d; let c = x % d;
    var o = ${residual ? 'K(t, c)' : '0.0'};
    for (var a = 0u; a < d; a++) { o += K(t, a) * G0(a, c); }
    sc[rD1 + x] = 2.0 * (o - V(t, c));`,
  );
}

/** Depth 2: Δ₂ = 2(X₂ G₁ (+K) − V). */
export const keyPassSecond = (residual: boolean) =>
  part(
    ['n', 'd'],
    `    let t = x / d; let c = x % d;
    var o = ${residual ? 'K(t, c)' : '0.0'};
    for (var j = 0u; j < h; j++) { o += sc[rX2 + t * h + j] * G1(j, c); }
    sc[rD2 + x] = 2.0 * (o - V(t, c));`,
  );

/** Depth 2: B = Δ₂ G₁ᵀ (kept when `keepB`), Δ₁ = B ⊙ φ'(Zk). */
export const keyPassThird = (keepB: boolean) =>
  part(
    ['n', 'h'],
    `    let t = x / h; let j = x % h;
    var b = 0.0;
    for (var c = 0u; c < d; c++) { b += sc[rD2 + t * d + c] * G1(j, c); }
    ${keepB ? 'sc[rB + x] = b;' : ''}
    sc[rD1 + x] = b * phi(sc[rZk + x], 1u);`,
  );

/** M[t,s] = (R Xᵀ)[t,s] for s ≤ t, times P[t,s] when `scaled`. */
export const scores = (M: string, R: Access, X: Access, width: string, scaled: boolean) =>
  part(
    ['n', 'n'],
    `    let t = x / n; let s = x % n;
    if (s <= t) {
      var m = 0.0;
      for (var a = 0u; a < ${width}; a++) { m += ${R('t', 'a')} * ${X('s', 'a')}; }
      sc[${M} + x] = ${scaled ? 'm * sc[rC + x] * theta(s)' : 'm'};
    }`,
  );

/** Layer l's dimensions and names: [d_in, d_out, W, S, Δ region, offset in a [W₀ | W₁] block]. */
export const layerOf = (layer: 0 | 1) =>
  layer === 0
    ? (['d', 'h', 'W0', 'S0', 'rD1', '0u'] as const)
    : (['h', 'd', 'W1', 'S1', 'rD2', 'd * h'] as const);

/**
 * Retrieval of one layer: z = β_t (R W)[t,c] + γ_t (R S)[t,c] − Σ_{s≤t} PM[t,s] Δ[s,c], stored by
 * `store` (PM already P ⊙ R Xᵀ when `scaled`, else multiplied by P here).
 */
export function retrieve(layer: 0 | 1, R: Access, PM: string, scaled: boolean, store: string): Part {
  const [din, dout, W, S, D] = layerOf(layer);
  const pm = scaled ? `sc[${PM} + t * n + s]` : `sc[${PM} + t * n + s] * sc[rC + t * n + s] * theta(s)`;
  return part(
    ['n', dout],
    `    let t = x / ${dout}; let c = x % ${dout};
    var rw = 0.0;
    var rs = 0.0;
    for (var a = 0u; a < ${din}; a++) { let r = ${R('t', 'a')}; rw += r * ${W}(a, c); rs += r * ${S}(a, c); }
    var att = 0.0;
    for (var s = 0u; s <= t; s++) { att += ${pm} * sc[${D} + s * ${dout} + c]; }
    let z = sc[rbeta + t] * rw + sc[rgamma + t] * rs - att;
    ${store}`,
  );
}

/** The state after the piece for one layer, written to the slot at `nxt`. */
function stateUpdate(layer: 0 | 1): Part {
  const [din, dout, , , D, off] = layerOf(layer);
  const X = layer === 0 ? 'K(s, a)' : 'sc[rX2 + s * h + a]';
  return part(
    [din, dout],
    `    let a = x / ${dout}; let c = x % ${dout};
    var uw = 0.0;
    var us = 0.0;
    for (var s = 0u; s < n; s++) {
      let g = ${X} * sc[${D} + s * ${dout} + c];
      uw += pRow(s) * g;
      us += eps(s) * g;
    }
    let w = st[cur + ${off} + x];
    let m = st[cur + WF + ${off} + x];
    st[nxt + ${off} + x] = sc[rbeta + n - 1u] * w + sc[rgamma + n - 1u] * m - uw;
    st[nxt + WF + ${off} + x] = sc[rmom + n - 1u] * m - us;`,
  );
}

/**
 * The forward stage kernels of one piece for every head. With `withY` false they only advance
 * the state (the backward's recomputation of piece-start states) and take ADVANCE_BINDINGS.
 *
 * Parameters: 0 n, 1 start, 2 T, 3 d, 4 h, 5 heads, 6 tok base, 7 tok stride, 8 st base,
 * 9 st stride, 10 cur (slot offset), 11 nxt, 12 G offset, 13 WF, 14 scratch base, 15 scratch
 * stride, 16 y base in `out`; TILES_WORD workgroups per head.
 */
export function forwardKernels(
  depth: number,
  activation: 'silu' | 'gelu',
  residual: boolean,
  withY: boolean,
): StageKernel[] {
  const y = (expr: string) => `out[yb + x] = ${expr}${residual ? ' + Q(t, c)' : ''};`;
  const stages: Part[][] = [
    [gateColumns, keyPassFirst(depth, residual)],
    [gateProducts, prefixes, ...(depth === 2 ? [keyPassSecond(residual)] : [])],
    [
      gamma,
      ...(withY ? [scores('rM1', Q, K, 'd', true)] : []),
      ...(depth === 2 ? [keyPassThird(false)] : []),
    ],
    [
      ...(withY ? [retrieve(0, Q, 'rM1', true, depth === 2 ? 'sc[rR2 + x] = phi(z, 0u);' : y('z'))] : []),
      stateUpdate(0),
      ...(depth === 2 ? [stateUpdate(1)] : []),
    ],
  ];
  if (withY && depth === 2) {
    stages.push([scores('rM2', R2, X2, 'h', true)], [retrieve(1, R2, 'rM2', true, y('z'))]);
  }
  const setup = `  n = P(0u); d = P(3u); h = P(4u); WF = P(13u);
  let start = P(1u); let T = P(2u);
  placeTokens(P(6u) + i * P(7u), T, start);
  let sb = P(8u) + i * P(9u);
  cur = sb + P(10u);
  nxt = sb + P(11u);
  gb = sb + P(12u);
  placeRegions(P(14u) + i * P(15u));${withY ? '\n  let yb = P(16u) + (i * T + start) * d;' : ''}`;
  const bindings = withY ? FORWARD_BINDINGS : ADVANCE_BINDINGS;
  return stages.map((parts) => kernel(bindings, ['nxt'], setup, parts, activation));
}
