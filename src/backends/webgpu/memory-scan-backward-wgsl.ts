/**
 * WGSL of the fused memory scan's backward (see memory-scan-wgsl.ts for the layout, the stage
 * kernels and the forward): per chunk piece, in reverse, the piece's intermediates recomputed
 * from its start state, then the adjoints of the state update, the retrieval (last layer first),
 * the key pass (second order through φ' and φ'') and the gate products. d· is a cotangent;
 * p = P[n−1,:], ε = E[n−1,:] ⊙ θ.
 */
import {
  type Access,
  BACKWARD_BINDINGS,
  gamma,
  gateColumns,
  gateProducts,
  K,
  kernel,
  keyPassFirst,
  keyPassSecond,
  keyPassThird,
  layerOf,
  type Part,
  part,
  prefixes,
  Q,
  R2,
  retrieve,
  type StageKernel,
  scores,
  X2,
} from './memory-scan-wgsl.js';

/** What the adjoint of one retrieval layer reads and writes. */
interface LayerAdjoint {
  layer: 0 | 1;
  /** R[t,a] (the layer's input), X[s,a] (its key-pass input), dZ[t,c] (the cotangent of Z). */
  R: Access;
  X: Access;
  dZ: Access;
  /** Regions: R Xᵀ (raw, from the recomputation), the cotangents of X and Δ. */
  M: string;
  dX: string;
  dD: string;
  /** Stores r = ∂/∂R[t,a] (x = t·din + a). */
  store: string;
}

/**
 * The adjoint of Z = β ⊙ R W + γ ⊙ R S − (P ⊙ M) Δ, M = R Xᵀ, in three stages:
 * (a) H = dZ Δᵀ, U₁ = dZ Wᵀ, U₂ = dZ Sᵀ, [dW | dS] += Rᵀ [β ⊙ dZ | γ ⊙ dZ];
 * (b) dβ_t += R_t·U₁_t, dγ_t += R_t·U₂_t, dP −= H ⊙ M, then H ← dM = −H ⊙ P and M ← P ⊙ M;
 * (c) dΔ −= (P ⊙ M)ᵀ dZ, dR = β ⊙ U₁ + γ ⊙ U₂ + dM X, dX += dMᵀ R.
 */
function retrieveAdjoint(s: LayerAdjoint): Part[][] {
  const [din, dout, W, S, D, off] = layerOf(s.layer);
  return [
    [
      part(
        ['n', 'n'],
        `    let t = x / n; let s = x % n;
    if (s <= t) {
      var hm = 0.0;
      for (var c = 0u; c < ${dout}; c++) { hm += ${s.dZ('t', 'c')} * sc[${D} + s * ${dout} + c]; }
      sc[rH + x] = hm;
    }`,
      ),
      part(
        ['n', din],
        `    let t = x / ${din}; let a = x % ${din};
    var u1 = 0.0;
    var u2 = 0.0;
    for (var c = 0u; c < ${dout}; c++) { let z = ${s.dZ('t', 'c')}; u1 += z * ${W}(a, c); u2 += z * ${S}(a, c); }
    sc[rU1 + x] = u1;
    sc[rU2 + x] = u2;`,
      ),
      part(
        [din, dout],
        `    let a = x / ${dout}; let c = x % ${dout};
    var gw = 0.0;
    var gs = 0.0;
    for (var t = 0u; t < n; t++) { let r = ${s.R('t', 'a')} * ${s.dZ('t', 'c')}; gw += sc[rbeta + t] * r; gs += sc[rgamma + t] * r; }
    adj[adjP + ${off} + x] += gw;
    adj[adjP + WF + ${off} + x] += gs;`,
      ),
    ],
    [
      part(
        ['n'],
        `    var db = 0.0;
    var dg = 0.0;
    for (var a = 0u; a < ${din}; a++) { let r = ${s.R('x', 'a')}; db += r * sc[rU1 + x * ${din} + a]; dg += r * sc[rU2 + x * ${din} + a]; }
    sc[rdBeta + x] += db;
    sc[rdGamma + x] += dg;`,
      ),
      part(
        ['n', 'n'],
        `    let t = x / n; let s = x % n;
    if (s <= t) {
      let hm = sc[rH + x];
      let mv = sc[${s.M} + x];
      let p = sc[rC + x] * theta(s);
      sc[rdP + x] -= hm * mv;
      sc[rH + x] = -hm * p;
      sc[${s.M} + x] = p * mv;
    }`,
      ),
    ],
    [
      part(
        ['n', dout],
        `    let s = x / ${dout}; let c = x % ${dout};
    var acc = 0.0;
    for (var t = s; t < n; t++) { acc += sc[${s.M} + t * n + s] * ${s.dZ('t', 'c')}; }
    sc[${s.dD} + x] -= acc;`,
      ),
      part(
        ['n', din],
        `    let t = x / ${din}; let a = x % ${din};
    var r = sc[rbeta + t] * sc[rU1 + x] + sc[rgamma + t] * sc[rU2 + x];
    for (var s = 0u; s <= t; s++) { r += sc[rH + t * n + s] * ${s.X('s', 'a')}; }
    ${s.store}`,
      ),
      part(
        ['n', din],
        `    let s = x / ${din}; let a = x % ${din};
    var acc = 0.0;
    for (var t = s; t < n; t++) { acc += sc[rH + t * n + s] * ${s.R('t', 'a')}; }
    sc[${s.dX} + x] += acc;`,
      ),
    ],
  ];
}

/**
 * The adjoint of the state update of one layer given [dW' | dS'] at adjN: dΔ and dX (initialised
 * here); the token terms of dP's last row and of dε (XW, XS: (X dW') ⊙ Δ and (X dS') ⊙ Δ, summed
 * per token in the next stage); [dW | dS] of the piece-start state (initialised); and per row of
 * W the partial sums of ⟨dW', W⟩, ⟨dW', S⟩, ⟨dS', S⟩ (dβ_n, dγ_n, dm_n; summed in the next stage).
 */
function stateAdjoint(layer: 0 | 1): Part[] {
  const [din, dout, , , D, off] = layerOf(layer);
  const [X, dX, dD, XW, XS, rows] =
    layer === 0
      ? ['K(s, a)', 'rdX1', 'rdD1', 'rXW0', 'rXS0', '0u']
      : ['sc[rX2 + s * h + a]', 'rdX2', 'rdD2', 'rXW1', 'rXS1', 'd'];
  const dW = (a: string, c: string) => `adj[adjN + ${off} + ${a} * ${dout} + ${c}]`;
  const dS = (a: string, c: string) => `adj[adjN + WF + ${off} + ${a} * ${dout} + ${c}]`;
  return [
    part(
      ['n', dout],
      `    let s = x / ${dout}; let c = x % ${dout};
    var xw = 0.0;
    var xs = 0.0;
    for (var a = 0u; a < ${din}; a++) { let v = ${X}; xw += v * ${dW('a', 'c')}; xs += v * ${dS('a', 'c')}; }
    let del = sc[${D} + x];
    sc[${XW} + x] = xw * del;
    sc[${XS} + x] = xs * del;
    sc[${dD} + x] = -pRow(s) * xw - eps(s) * xs;`,
    ),
    part(
      ['n', din],
      `    let s = x / ${din}; let a = x % ${din};
    var gw = 0.0;
    var gs = 0.0;
    for (var c = 0u; c < ${dout}; c++) { let del = sc[${D} + s * ${dout} + c]; gw += ${dW('a', 'c')} * del; gs += ${dS('a', 'c')} * del; }
    sc[${dX} + x] = -pRow(s) * gw - eps(s) * gs;`,
    ),
    part(
      [din],
      `    var pw = 0.0;
    var pg = 0.0;
    var pm = 0.0;
    for (var c = 0u; c < ${dout}; c++) {
      let e = ${off} + x * ${dout} + c;
      let gw = adj[adjN + e];
      let gs = adj[adjN + WF + e];
      let w = st[cur + e];
      let m = st[cur + WF + e];
      adj[adjP + e] = sc[rbeta + n - 1u] * gw;
      adj[adjP + WF + e] = sc[rgamma + n - 1u] * gw + sc[rmom + n - 1u] * gs;
      pw += gw * w;
      pg += gw * m;
      pm += gs * m;
    }
    let o = rpart + 3u * (${rows} + x);
    sc[o] = pw;
    sc[o + 1u] = pg;
    sc[o + 2u] = pm;`,
    ),
  ];
}

/** The per-token sums of the state adjoint (dP's last row, dε) and dβ_n, dγ_n, dm_n. */
function stateSums(depth: number): Part[] {
  return [
    part(
      ['n'],
      `    var dpr = 0.0;
    var de = 0.0;
    for (var c = 0u; c < h; c++) { dpr += sc[rXW0 + x * h + c]; de += sc[rXS0 + x * h + c]; }
${depth === 2 ? '    for (var c = 0u; c < d; c++) { dpr += sc[rXW1 + x * d + c]; de += sc[rXS1 + x * d + c]; }' : ''}
    sc[rdP + (n - 1u) * n + x] -= dpr;
    sc[rdEps + x] = -de;`,
    ),
    part(
      ['1'],
      `    var sums = vec3<f32>(0.0);
    for (var a = 0u; a < ${depth === 2 ? 'd + h' : 'd'}; a++) {
      sums += vec3<f32>(sc[rpart + 3u * a], sc[rpart + 3u * a + 1u], sc[rpart + 3u * a + 2u]);
    }
    sc[rdBeta + n - 1u] = sums.x;
    sc[rdGamma + n - 1u] = sums.y;
    sc[rdMom + n - 1u] = sums.z;`,
    ),
  ];
}

/**
 * The key pass's adjoint (second order through φ' and φ''): from dX₁, dX₂, dΔ₁, dΔ₂ to dK, dV
 * and the cotangent of G (added at adjG). Depth 2, with dB = dΔ₁ ⊙ φ'(Zk) (in U₁), ∂out (in U₂)
 * and dZk (in dZ):
 *   (a) dB, dZk = dΔ₁ ⊙ B ⊙ φ''(Zk); (b) ∂out = 2(dΔ₂ + dB G₁), dV = −∂out;
 *   (c) dG₁ += dBᵀ Δ₂ + X₂ᵀ ∂out, dZk += (dX₂ + ∂out G₁ᵀ) ⊙ φ'(Zk);
 *   (d) dG₀ += Kᵀ dZk, dK = dX₁ + dZk G₀ᵀ (+∂out).
 * Depth 1: (a) ∂out = 2 dΔ₁, dV = −∂out; (b) dG₀ += Kᵀ ∂out, dK = dX₁ + ∂out G₀ᵀ (+∂out).
 */
function keyPassAdjoint(depth: number, residual: boolean): Part[][] {
  const dK = `dtok[dkb + x] = r${residual ? ' + sc[rU2 + x]' : ''};`;
  if (depth === 1) {
    return [
      [part(['n', 'd'], '    let o = 2.0 * sc[rdD1 + x];\n    sc[rU2 + x] = o;\n    dtok[dvb + x] = -o;')],
      [
        part(
          ['d', 'd'],
          `    let a = x / d; let c = x % d;
    var acc = 0.0;
    for (var t = 0u; t < n; t++) { acc += K(t, a) * sc[rU2 + t * d + c]; }
    adj[adjG + x] += acc;`,
        ),
        part(
          ['n', 'd'],
          `    let t = x / d; let a = x % d;
    var r = sc[rdX1 + x];
    for (var c = 0u; c < d; c++) { r += sc[rU2 + t * d + c] * G0(a, c); }
    ${dK}`,
        ),
      ],
    ];
  }
  return [
    [
      part(
        ['n', 'h'],
        `    let dd = sc[rdD1 + x];
    let z = sc[rZk + x];
    sc[rU1 + x] = dd * phi(z, 1u);
    sc[rdZ + x] = dd * sc[rB + x] * phi(z, 2u);`,
      ),
    ],
    [
      part(
        ['n', 'd'],
        `    let t = x / d; let c = x % d;
    var tot = sc[rdD2 + x];
    for (var j = 0u; j < h; j++) { tot += sc[rU1 + t * h + j] * G1(j, c); }
    sc[rU2 + x] = 2.0 * tot;
    dtok[dvb + x] = -2.0 * tot;`,
      ),
    ],
    [
      part(
        ['h', 'd'],
        `    let j = x / d; let c = x % d;
    var acc = 0.0;
    for (var t = 0u; t < n; t++) { acc += sc[rU1 + t * h + j] * sc[rD2 + t * d + c] + sc[rX2 + t * h + j] * sc[rU2 + t * d + c]; }
    adj[adjG + d * h + x] += acc;`,
      ),
      part(
        ['n', 'h'],
        `    let t = x / h; let j = x % h;
    var g = sc[rdX2 + x];
    for (var c = 0u; c < d; c++) { g += sc[rU2 + t * d + c] * G1(j, c); }
    sc[rdZ + x] += g * phi(sc[rZk + x], 1u);`,
      ),
    ],
    [
      part(
        ['d', 'h'],
        `    let a = x / h; let j = x % h;
    var acc = 0.0;
    for (var t = 0u; t < n; t++) { acc += K(t, a) * sc[rdZ + t * h + j]; }
    adj[adjG + x] += acc;`,
      ),
      part(
        ['n', 'd'],
        `    let t = x / d; let a = x % d;
    var r = sc[rdX1 + x];
    for (var j = 0u; j < h; j++) { r += sc[rdZ + t * h + j] * G0(a, j); }
    ${dK}`,
      ),
    ],
  ];
}

/**
 * The gates' adjoint: (a) dθ_s = Σ_t dP[t,s] C[t,s] + dε_s E[n−1,s], dP ← dC = dP ⊙ θ_row;
 * (b) dA = dC Eᵀ + dγ mᵀ, dE = Aᵀ dC (+ dε θ on the last row), dm += Aᵀ dγ;
 * (c) for D ∈ {A, E} with prefix c ∈ {β, m} and gate g ∈ {1 − α, η}:
 *     dg_i = Σ_{t≥i} D[t,i] (Σ_{j<i} dD[t,j] D[i−1,j] + c_{i−1} dc_t) (no division), dα = −d(1 − α).
 */
const GATES_ADJOINT: Part[][] = [
  [
    part(
      ['n'],
      `    let th = theta(x);
    var acc = sc[rdEps + x] * sc[rE + (n - 1u) * n + x];
    for (var t = x; t < n; t++) {
      let dp = sc[rdP + t * n + x];
      acc += dp * sc[rC + t * n + x];
      sc[rdP + t * n + x] = dp * th;
    }
    dtok[dthb + x] = acc;`,
    ),
  ],
  [
    part(
      ['n', 'n'],
      `    let t = x / n; let j = x % n;
    if (j <= t) {
      var acc = sc[rdGamma + t] * sc[rmom + j];
      for (var s = 0u; s <= j; s++) { acc += sc[rdP + t * n + s] * sc[rE + j * n + s]; }
      sc[rdA + x] = acc;
    }`,
    ),
    part(
      ['n', 'n'],
      `    let j = x / n; let s = x % n;
    if (s <= j) {
      var acc = select(0.0, sc[rdEps + s] * theta(s), j == n - 1u);
      for (var t = j; t < n; t++) { acc += sc[rA + t * n + j] * sc[rdP + t * n + s]; }
      sc[rdE + x] = acc;
    }`,
    ),
    part(
      ['n'],
      `    var acc = sc[rdMom + x];
    for (var t = x; t < n; t++) { acc += sc[rA + t * n + x] * sc[rdGamma + t]; }
    sc[rdMom + x] = acc;`,
    ),
  ],
  [
    part(
      ['n'],
      `    var bp = 1.0;
    var mp = 1.0;
    if (x > 0u) { bp = sc[rbeta + x - 1u]; mp = sc[rmom + x - 1u]; }
    var ak = 0.0;
    var ae = 0.0;
    for (var t = x; t < n; t++) {
      var fa = bp * sc[rdBeta + t];
      var fe = mp * sc[rdMom + t];
      for (var j = 0u; j < x; j++) {
        fa += sc[rdA + t * n + j] * sc[rA + (x - 1u) * n + j];
        fe += sc[rdE + t * n + j] * sc[rE + (x - 1u) * n + j];
      }
      ak += sc[rA + t * n + x] * fa;
      ae += sc[rE + t * n + x] * fe;
    }
    dtok[dalb + x] = -ak;
    dtok[detb + x] = ae;`,
    ),
  ],
];

/**
 * The backward stage kernels of one piece for every head: the piece's intermediates recomputed
 * from its start state, then the adjoints of the state update, the retrieval (last layer first),
 * the key pass and the gates. They write the piece's rows of dtok and the cotangent of the
 * piece-start state into the adj slot at adjP, and add the cotangent of G at adjG (adjP when G is
 * that state's W).
 *
 * Parameters: 0 n, 1 start, 2 T, 3 d, 4 h, 5 heads, 6 tok base, 7 tok stride, 8 st base,
 * 9 st stride, 10 cur, 11 G offset, 12 WF, 13 scratch base, 14 scratch stride, 15 dy base in
 * `cot`, 16 dtok base, 17 dtok stride, 18 adj base, 19 adj stride, 20 adjN, 21 adjP, 22 adjG;
 * TILES_WORD workgroups per head.
 */
export function backwardKernels(
  depth: number,
  activation: 'silu' | 'gelu',
  residual: boolean,
): StageKernel[] {
  const dy: Access = (t, c) => `cot[dyb + ${t} * d + ${c}]`;
  const dq = `dtok[dqb + x] = r${residual ? ' + cot[dyb + x]' : ''};`;
  const zero = [
    part(['n', 'n'], '    sc[rdP + x] = 0.0;'),
    part(['n'], '    sc[rdBeta + x] = 0.0;\n    sc[rdGamma + x] = 0.0;\n    sc[rdMom + x] = 0.0;'),
  ];
  const stages: Part[][] = [
    [gateColumns, keyPassFirst(depth, residual), ...zero],
    [gateProducts, prefixes, ...(depth === 2 ? [keyPassSecond(residual)] : [])],
    [gamma, scores('rM1', Q, K, 'd', false), ...(depth === 2 ? [keyPassThird(true)] : [])],
    [
      ...stateAdjoint(0),
      ...(depth === 2 ? stateAdjoint(1) : []),
      ...(depth === 2
        ? [retrieve(0, Q, 'rM1', false, 'sc[rZq + x] = z;\n    sc[rR2 + x] = phi(z, 0u);')]
        : []),
    ],
    [...stateSums(depth), ...(depth === 2 ? [scores('rM2', R2, X2, 'h', false)] : [])],
  ];
  if (depth === 2) {
    const store = 'sc[rdZ + x] = r * phi(sc[rZq + x], 1u);';
    stages.push(
      ...retrieveAdjoint({ layer: 1, R: R2, X: X2, dZ: dy, M: 'rM2', dX: 'rdX2', dD: 'rdD2', store }),
    );
    const dZ: Access = (t, c) => `sc[rdZ + ${t} * h + ${c}]`;
    stages.push(
      ...retrieveAdjoint({ layer: 0, R: Q, X: K, dZ, M: 'rM1', dX: 'rdX1', dD: 'rdD1', store: dq }),
    );
  } else {
    stages.push(
      ...retrieveAdjoint({ layer: 0, R: Q, X: K, dZ: dy, M: 'rM1', dX: 'rdX1', dD: 'rdD1', store: dq }),
    );
  }
  // The gates' adjoint needs only dP, dβ, dγ, dm and dε: its stages run beside the key pass's.
  const keys = keyPassAdjoint(depth, residual);
  for (let s = 0; s < Math.max(keys.length, GATES_ADJOINT.length); s++) {
    stages.push([...(keys[s] ?? []), ...(GATES_ADJOINT[s] ?? [])]);
  }
  const setup = `  n = P(0u); d = P(3u); h = P(4u); WF = P(12u);
  let start = P(1u); let T = P(2u);
  placeTokens(P(6u) + i * P(7u), T, start);
  let sb = P(8u) + i * P(9u);
  cur = sb + P(10u);
  gb = sb + P(11u);
  placeRegions(P(13u) + i * P(14u));
  let dyb = P(15u) + (i * T + start) * d;
  let dtb = P(16u) + i * P(17u);
  let dqb = dtb + start * d;
  let dkb = dqb + T * d;
  let dvb = dkb + T * d;
  let dalb = dtb + 3u * T * d + start;
  let detb = dalb + T;
  let dthb = detb + T;
  let ab = P(18u) + i * P(19u);
  adjN = ab + P(20u);
  adjP = ab + P(21u);
  adjG = ab + P(22u);`;
  return stages.map((parts) => kernel(BACKWARD_BINDINGS, ['adjN', 'adjP', 'adjG'], setup, parts, activation));
}
