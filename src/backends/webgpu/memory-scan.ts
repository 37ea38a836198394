/**
 * The WebGPU backend's fused memory scan (`Backend.fusedMemoryScan`; SPEC §1, paper eq. 12–16):
 * the host side of the kernels in memory-scan-wgsl.ts. `memoryScan` (memory/scan.ts) validates the
 * call, asks `supports` — which declines depth ≥ 3, non-float32, weights whose leading axes do not
 * broadcast to q's, and heads too large for one storage binding — and records it as one tape node;
 * this file sees only buffers and the plain `MemoryScanParams`.
 *
 * Forward: the inputs are packed per head (tok), the state goes into slot 0 of a per-head state
 * buffer, and each chunk piece runs as a few stage kernels (memory-scan-wgsl.ts), each ONE
 * dispatch for all heads, that read the piece-start slot and write the next; the state stays on
 * the GPU from piece to piece and nothing is read back. A recorded forward keeps every
 * piece-start state (its `saved` buffer) when they fit `webgpuScanLimits.saveBytes`. Backward:
 * the pieces in reverse (memory-scan-backward-wgsl.ts), carrying the state's cotangent in two
 * adjoint slots; piece-start states come from `saved`, or are recomputed by state-only forward
 * stages (with √P checkpoints beyond `webgpuScanLimits.stateBytes`). Heads are split over several
 * dispatches only where one binding cannot hold them all.
 * Browser-safe: no `node:*` imports.
 */
import {
  type Backend,
  type BackendBuffer,
  type FusedMemoryScan,
  type MemoryScanBuffers,
  type MemoryScanParams,
  memoryScanOutputShapes,
} from '../../engine/backend.js';
import { broadcastStrides, broadcastsTo, type Shape, sizeOf, stridesOf } from '../../engine/shape.js';
import type { Binding, GpuBuffer, GpuContext } from './context.js';
import type { Moves } from './elementwise.js';
import type { Operand } from './mapped.js';
import { backwardKernels } from './memory-scan-backward-wgsl.js';
import {
  type Count,
  forwardKernels,
  SCAN_WORKGROUP,
  type StageKernel,
  scanScratchFloats,
  TILES_WORD,
} from './memory-scan-wgsl.js';

/**
 * Memory limits of the fused scan (bytes). Exported so tests can shrink them to exercise the
 * recompute and checkpoint paths; the defaults suit training.
 */
export const webgpuScanLimits = {
  /** Scratch of one dispatch (its heads' intermediates); more heads are split over dispatches. */
  maxScratchBytes: 256 * 2 ** 20,
  /** Piece-start states a recorded forward keeps for its backward, all heads; beyond it the backward recomputes. */
  saveBytes: 256 * 2 ** 20,
  /** Recomputed piece-start states the backward keeps before it checkpoints every ⌈√P⌉ pieces. */
  stateBytes: 64 * 2 ** 20,
};

/** What forward and backward derive from a call's parameters. */
interface Plan {
  readonly params: MemoryScanParams;
  readonly lead: Shape;
  readonly heads: number;
  readonly depth: number;
  readonly T: number;
  readonly d: number;
  /** The hidden width (d for depth 1): layer 0 is d × h, layer 1 h × d. */
  readonly h: number;
  readonly b: number;
  /** position mod b: where the first piece starts inside its chunk. */
  readonly offset: number;
  /** Floats of the weights of all layers (WF) and of a state slot [W | S] (2·WF). */
  readonly WF: number;
  readonly SF: number;
  readonly sizes: readonly number[];
  /** Offset of layer l's matrix in a [W₀ | W₁] block. */
  readonly layerOffset: readonly number[];
  readonly pieces: number;
  /** Floats per head: packed tokens, scratch, adjoint buffer. */
  readonly TS: number;
  readonly SCS: number;
  readonly AS: number;
  /** Whether the first piece takes its gradients at carried chunk-start weights. */
  readonly carried: boolean;
  /** Whether the packed outputs end with new chunk-start weights. */
  readonly chunkStartOut: boolean;
  /** Heads per dispatch (all of them unless one binding cannot hold them). */
  readonly group: number;
}

/** Checkpoints every ⌈√P⌉ pieces: the state slots a recomputing backward needs (checkpoints + one segment). */
function checkpointLayout(pieces: number): { seg: number; segments: number } {
  const seg = Math.max(2, Math.ceil(Math.sqrt(pieces)));
  return { seg, segments: Math.ceil(pieces / seg) };
}

function checkpointSlots(pieces: number): number {
  const { seg, segments } = checkpointLayout(pieces);
  return Math.max(2, seg + segments);
}

/** Runs `fn` for each group of at most `group` heads: (first head, heads in the group). */
function forHeadGroups(p: Plan, group: number, fn: (first: number, count: number) => void): void {
  for (let first = 0; first < p.heads; first += group) fn(first, Math.min(group, p.heads - first));
}

/** The parameter words every stage kernel starts with: n, start, T, d, h, heads in the dispatch. */
function pieceWords(p: Plan, piece: number, count: number): number[] {
  return [pieceLength(piece, p), pieceStart(piece, p), p.T, p.d, p.h, count];
}

function pieceStart(p: number, plan: Plan): number {
  return p === 0 ? 0 : Math.min(plan.b - plan.offset, plan.T) + (p - 1) * plan.b;
}

function pieceLength(p: number, plan: Plan): number {
  return Math.min(p === 0 ? plan.b - plan.offset : plan.b, plan.T - pieceStart(p, plan));
}

/** Creates the fused memory scan of a WebGPU backend. */
export function createWebGpuMemoryScan(
  ctx: GpuContext,
  moves: Moves,
  reduce: Backend['reduce'],
): FusedMemoryScan {
  function plan(params: MemoryScanParams): Plan | null {
    const depth = params.widths.length - 1;
    if (depth !== 1 && depth !== 2) return null;
    if (params.activation !== 'silu' && params.activation !== 'gelu') return null;
    const T = params.tokens;
    const d = params.widths[0]!;
    const h = depth === 2 ? params.widths[1]! : d;
    const b = params.chunkSize;
    if (T < 1 || d < 1 || h < 1 || b < 1) return null;
    const offset = params.position % b;
    if ((offset !== 0) !== (params.chunkStartLeads !== null)) return null;
    const lead = params.lead;
    const leads = [...params.weightLeads, ...(params.momentumLeads ?? []), ...(params.chunkStartLeads ?? [])];
    if (!leads.every((own) => broadcastsTo(own, lead))) return null;
    const sizes = depth === 2 ? [d * h, h * d] : [d * d];
    const WF = sizes.reduce((x, y) => x + y, 0);
    const first = Math.min(b - offset, T);
    const heads = sizeOf(lead);
    const SCS = scanScratchFloats(Math.min(b, T), d, h);
    const TS = T * (3 * d + 3);
    const AS = 5 * WF;
    // Heads per dispatch: every per-head region of a dispatch must fit one binding.
    const pieces = 1 + Math.ceil((T - first) / b);
    const perHead = [TS, SCS, AS, T * d, (2 * checkpointSlots(pieces) + 1) * WF];
    let group = Math.min(heads, Math.floor(webgpuScanLimits.maxScratchBytes / (4 * SCS)));
    for (const floats of perHead) group = Math.min(group, Math.floor(room() / floats));
    if (group < 1 || heads === 0) return null;
    const outputs = memoryScanOutputShapes(params).length;
    return {
      params,
      lead,
      heads,
      depth,
      T,
      d,
      h,
      b,
      offset,
      WF,
      SF: 2 * WF,
      sizes,
      layerOffset: depth === 2 ? [0, d * h] : [0],
      pieces,
      TS,
      SCS,
      AS,
      carried: offset !== 0,
      chunkStartOut: outputs === 1 + 3 * depth,
      group,
    };
  }

  /** Elements one dispatch may bind of a buffer. */
  const room = () => ctx.windowElements;

  /** Heads per dispatch when the state buffer holds `slots` slots per head (0: not even one head fits). */
  const groupFor = (p: Plan, slots: number) => Math.min(p.group, Math.floor(room() / (slots * p.SF + p.WF)));

  const describe = (p: Plan) => () =>
    `${p.heads} heads × ${p.T} tokens, widths [${p.params.widths.join(', ')}], chunk ${p.b}, position ${p.params.position}`;

  // ---- strided views over the heads --------------------------------------------------------

  /** Element strides over the leading axes of per-head blocks of `floats`, then 1. */
  const headStrides = (p: Plan, floats: number) => [...stridesOf(p.lead).map((s) => s * floats), 1];
  const perHead = (buffer: GpuBuffer, p: Plan, floats: number, offset: number): Operand => ({
    buffer,
    strides: headStrides(p, floats),
    offset,
  });
  /** A stack of matrices of `size` floats with leading axes `own`, broadcast over the heads. */
  const matrices = (buffer: BackendBuffer, p: Plan, own: Shape, size: number): Operand => ({
    buffer: buffer as GpuBuffer,
    strides: [...broadcastStrides(own, p.lead).map((s) => s * size), 1],
    offset: 0,
  });
  const box = (p: Plan, floats: number) => [...p.lead, floats];

  /** tok: per head [q | k | v | α | η | θ]. */
  function packTokens(p: Plan, x: MemoryScanBuffers): GpuBuffer {
    const tok = ctx.alloc(p.heads * p.TS, 'float32');
    const rows = p.T * p.d;
    const parts: [BackendBuffer, number, number][] = [
      [x.q, 0, rows],
      [x.k, rows, rows],
      [x.v, 2 * rows, rows],
      [x.alpha, 3 * rows, p.T],
      [x.eta, 3 * rows + p.T, p.T],
      [x.theta, 3 * rows + 2 * p.T, p.T],
    ];
    for (const [src, at, floats] of parts) {
      moves.copy(perHead(tok, p, p.TS, at), perHead(src as GpuBuffer, p, floats, 0), box(p, floats));
    }
    return tok;
  }

  /** Slot 0 of every head ← (W⁰, S⁰ or zeros); the G block ← the carried chunk-start weights. */
  function loadState(p: Plan, x: MemoryScanBuffers, states: GpuBuffer, HS: number, gAt: number): void {
    p.sizes.forEach((size, l) => {
      const at = p.layerOffset[l]!;
      moves.copy(
        perHead(states, p, HS, at),
        matrices(x.weights[l]!, p, p.params.weightLeads[l]!, size),
        box(p, size),
      );
      const s = perHead(states, p, HS, p.WF + at);
      if (x.momentum)
        moves.copy(s, matrices(x.momentum[l]!, p, p.params.momentumLeads![l]!, size), box(p, size));
      else moves.fill(s, box(p, size), 0, 'float32');
      if (p.carried) {
        const c = matrices(x.chunkStart![l]!, p, p.params.chunkStartLeads![l]!, size);
        moves.copy(perHead(states, p, HS, gAt + at), c, box(p, size));
      }
    });
  }

  /** Where a dispatch for heads [first, first + count) finds a per-head region of `floats`. */
  function bind(buffer: GpuBuffer, first: number, count: number, floats: number): [Binding, number] {
    const w = ctx.bind(buffer, first * floats, count * floats);
    return [w.binding, w.skip];
  }

  /** Stage kernels per variant, their pipelines shared wherever two variants' sources agree. */
  const variants = new Map<string, { pipeline: GPUComputePipeline; counts: readonly Count[] }[]>();
  const sourceIds = new Map<string, number>();
  function stages(kind: 'forward' | 'advance' | 'backward', p: Plan) {
    const { activation, residual } = p.params;
    const key = `${kind}:${p.depth}:${activation}:${residual}`;
    let list = variants.get(key);
    if (!list) {
      const kernels: StageKernel[] =
        kind === 'backward'
          ? backwardKernels(p.depth, activation, residual)
          : forwardKernels(p.depth, activation, residual, kind === 'forward');
      list = kernels.map(({ source, counts }) => {
        let id = sourceIds.get(source);
        if (id === undefined) {
          id = sourceIds.size;
          sourceIds.set(source, id);
        }
        return { pipeline: ctx.pipeline(`memoryScan stage ${id}`, () => source), counts };
      });
      variants.set(key, list);
    }
    return list;
  }

  /** Runs a piece's stage kernels for `count` heads with the given parameters and bindings. */
  function runStages(
    list: ReturnType<typeof stages>,
    p: Plan,
    n: number,
    count: number,
    params: number[],
    bindings: Binding[],
  ): void {
    const dims = { n, d: p.d, h: p.h, '1': 1 };
    const words = [...params, ...new Array<number>(TILES_WORD + 1 - params.length).fill(0)];
    for (const { pipeline, counts } of list) {
      const outputs = Math.max(...counts.map((c) => c.reduce((x, k) => x * dims[k], 1)));
      const tiles = Math.ceil(outputs / SCAN_WORKGROUP);
      words[TILES_WORD] = tiles;
      ctx.dispatch(pipeline, words, bindings, count * tiles);
    }
  }

  /**
   * Piece p forward for every head, `group` heads per dispatch, from slot `from` to slot `to` of
   * `states` (HS floats per head, G at gAt); writes y into `out` unless out is null (state only).
   */
  function forwardPiece(
    p: Plan,
    piece: number,
    tok: GpuBuffer,
    states: GpuBuffer,
    HS: number,
    from: number,
    to: number,
    gAt: number,
    scratch: GpuBuffer,
    group: number,
    out: GpuBuffer | null,
  ): void {
    const gOff = piece === 0 && p.carried ? gAt : from * p.SF;
    forHeadGroups(p, group, (first, count) => {
      const [tb, tSkip] = bind(tok, first, count, p.TS);
      const [sb, sSkip] = bind(states, first, count, HS);
      const [xb, xSkip] = bind(scratch, 0, count, p.SCS);
      const n = pieceLength(piece, p);
      const params = [
        ...pieceWords(p, piece, count),
        tSkip,
        p.TS,
        sSkip,
        HS,
        from * p.SF,
        to * p.SF,
        gOff,
        p.WF,
        xSkip,
        p.SCS,
      ];
      if (out) {
        const [ob, oSkip] = bind(out, first, count, p.T * p.d);
        runStages(stages('forward', p), p, n, count, [...params, oSkip], [tb, sb, xb, ob]);
      } else {
        runStages(stages('advance', p), p, n, count, params, [tb, sb, xb]);
      }
    });
  }

  /** The packed outputs' matrix j (0 W, 1 S, 2 chunk-start W) of layer l, as a per-head operand. */
  const outMatrices = (out: GpuBuffer, p: Plan, j: number, l: number): Operand =>
    perHead(out, p, p.sizes[l]!, p.heads * (p.T * p.d + j * p.WF + p.layerOffset[l]!));

  function forward(p: Plan, x: MemoryScanBuffers, recording: boolean) {
    ctx.begin('memoryScan forward', describe(p));
    const { heads, pieces: P, SF, WF } = p;
    const packed = ctx.alloc(heads * (p.T * p.d + WF * (p.chunkStartOut ? 3 : 2)), 'float32');
    const save =
      recording && heads * ((P + 1) * SF + WF) * 4 <= webgpuScanLimits.saveBytes && groupFor(p, P + 1) >= 1;
    const slots = save ? P + 1 : 2;
    const HS = slots * SF + WF;
    const gAt = slots * SF;
    const group = groupFor(p, slots);
    const tok = packTokens(p, x);
    const states = ctx.alloc(heads * HS, 'float32');
    const scratch = ctx.alloc(group * p.SCS, 'float32');
    loadState(p, x, states, HS, gAt);
    const slotOf = (piece: number) => (save ? piece : piece % 2);
    for (let piece = 0; piece < P; piece++) {
      forwardPiece(p, piece, tok, states, HS, slotOf(piece), slotOf(piece + 1), gAt, scratch, group, packed);
    }
    // The state after the last piece, and (ending mid-chunk after a boundary) its start's weights.
    p.sizes.forEach((size, l) => {
      const at = p.layerOffset[l]!;
      const final = slotOf(P) * SF + at;
      moves.copy(outMatrices(packed, p, 0, l), perHead(states, p, HS, final), box(p, size));
      moves.copy(outMatrices(packed, p, 1, l), perHead(states, p, HS, final + WF), box(p, size));
      if (p.chunkStartOut) {
        moves.copy(
          outMatrices(packed, p, 2, l),
          perHead(states, p, HS, slotOf(P - 1) * SF + at),
          box(p, size),
        );
      }
    });
    ctx.release(tok);
    ctx.release(scratch);
    if (!save) ctx.release(states);
    return { packed, saved: save ? states : null };
  }

  /** Per-head matrices summed over the heads that share one (own leading axes), as a new buffer. */
  function sumToLeads(p: Plan, adj: GpuBuffer, at: number, own: Shape, size: number): GpuBuffer {
    const dense = ctx.alloc(p.heads * size, 'float32');
    moves.copy(perHead(dense, p, size, 0), perHead(adj, p, p.AS, at), box(p, size));
    const padded = [...new Array<number>(p.lead.length - own.length).fill(1), ...own];
    const axes = p.lead.map((_, a) => a).filter((a) => padded[a] === 1 && p.lead[a] !== 1);
    if (axes.length === 0) return dense;
    const summed = reduce('sum', dense, box(p, size), axes, 'float32') as GpuBuffer;
    ctx.release(dense);
    return summed;
  }

  function backward(
    p: Plan,
    x: MemoryScanBuffers,
    saved: GpuBuffer | null,
    cot: GpuBuffer,
  ): MemoryScanBuffers {
    ctx.begin('memoryScan backward', describe(p));
    const { heads, pieces: P, SF, WF, AS } = p;
    const list = stages('backward', p);
    // Piece-start states: saved (slot p), or recomputed into checkpoints c·seg (slot c) and the
    // current segment's pieces (slots segments + p − first).
    const whole =
      saved !== null ||
      (heads * ((P + 1) * SF + WF) * 4 <= webgpuScanLimits.stateBytes && groupFor(p, P + 1) >= 1);
    const { seg, segments } = whole ? { seg: P, segments: 1 } : checkpointLayout(P);
    const slots = saved ? P + 1 : segments + seg;
    const HS = slots * SF + WF;
    const gAt = slots * SF;
    const group = groupFor(p, slots);
    const tok = packTokens(p, x);
    const dtok = ctx.alloc(heads * p.TS, 'float32');
    const scratch = ctx.alloc(group * p.SCS, 'float32');
    let states = saved;
    if (!states) {
      states = ctx.alloc(heads * HS, 'float32');
      loadState(p, x, states, HS, gAt);
      let from = 0;
      for (let piece = 0; piece < (segments - 1) * seg; piece++) {
        const to = (piece + 1) % seg === 0 ? (piece + 1) / seg : segments + (piece & 1);
        forwardPiece(p, piece, tok, states, HS, from, to, gAt, scratch, group, null);
        from = to;
      }
    }
    // The state's cotangent: two slots (after / before the current piece), then dG of a carried G.
    const adj = ctx.alloc(heads * AS, 'float32');
    p.sizes.forEach((size, l) => {
      const at = p.layerOffset[l]!;
      moves.copy(perHead(adj, p, AS, at), outMatrices(cot, p, 0, l), box(p, size));
      moves.copy(perHead(adj, p, AS, WF + at), outMatrices(cot, p, 1, l), box(p, size));
    });
    if (p.carried) moves.fill(perHead(adj, p, AS, 2 * SF), box(p, WF), 0, 'float32');
    let next = 0;
    for (let c = segments - 1; c >= 0; c--) {
      const first = c * seg;
      const end = Math.min(P, first + seg);
      if (!saved) {
        for (let piece = first; piece + 1 < end; piece++) {
          const from = piece === first ? c : segments + piece - first;
          const to = segments + piece + 1 - first;
          forwardPiece(p, piece, tok, states, HS, from, to, gAt, scratch, group, null);
        }
      }
      for (let piece = end - 1; piece >= first; piece--) {
        const slot = saved ? piece : piece === first ? c : segments + piece - first;
        const prev = 1 - next;
        const gOff = piece === 0 && p.carried ? gAt : slot * SF;
        const dgOff = piece === 0 && p.carried ? 2 * SF : prev * SF;
        forHeadGroups(p, group, (h0, count) => {
          const [tb, tSkip] = bind(tok, h0, count, p.TS);
          const [sb, sSkip] = bind(states, h0, count, HS);
          const [cb, cSkip] = bind(cot, h0, count, p.T * p.d);
          const [db, dSkip] = bind(dtok, h0, count, p.TS);
          const [ab, aSkip] = bind(adj, h0, count, AS);
          const [xb, xSkip] = bind(scratch, 0, count, p.SCS);
          const n = pieceLength(piece, p);
          const params = [
            ...pieceWords(p, piece, count),
            tSkip,
            p.TS,
            sSkip,
            HS,
            slot * SF,
            gOff,
            WF,
            xSkip,
            p.SCS,
            cSkip,
            dSkip,
            p.TS,
            aSkip,
            AS,
            next * SF,
            prev * SF,
            dgOff,
          ];
          runStages(list, p, n, count, params, [tb, sb, xb, cb, db, ab]);
        });
        if (piece === P - 1 && p.chunkStartOut) {
          // The chunk-start output is the last piece's start weights: its cotangent joins theirs.
          p.sizes.forEach((size, l) => {
            const to = perHead(adj, p, AS, prev * SF + p.layerOffset[l]!);
            moves.accumulate(to, outMatrices(cot, p, 2, l), box(p, size));
          });
        }
        next = prev;
      }
    }
    const layers = (leads: readonly Shape[], at: number) =>
      p.sizes.map((size, l) => sumToLeads(p, adj, at + p.layerOffset[l]!, leads[l]!, size));
    const pm = p.params;
    const grads = [p.T * p.d, p.T * p.d, p.T * p.d, p.T, p.T, p.T];
    let at = 0;
    const [dq, dk, dv, dAlpha, dEta, dTheta] = grads.map((floats) => {
      const g = ctx.alloc(heads * floats, 'float32');
      moves.copy(perHead(g, p, floats, 0), perHead(dtok, p, p.TS, at), box(p, floats));
      at += floats;
      return g;
    }) as [GpuBuffer, GpuBuffer, GpuBuffer, GpuBuffer, GpuBuffer, GpuBuffer];
    const result: MemoryScanBuffers = {
      q: dq,
      k: dk,
      v: dv,
      alpha: dAlpha,
      eta: dEta,
      theta: dTheta,
      weights: layers(pm.weightLeads, next * SF),
      momentum: pm.momentumLeads ? layers(pm.momentumLeads, next * SF + WF) : null,
      chunkStart: pm.chunkStartLeads ? layers(pm.chunkStartLeads, 2 * SF) : null,
    };
    for (const b of [tok, dtok, scratch, adj]) ctx.release(b);
    if (!saved) ctx.release(states);
    return result;
  }

  return {
    supports: (params, dtype) => dtype === 'float32' && plan(params) !== null,
    forward: (inputs, params, _dtype, recording) => forward(plan(params)!, inputs, recording),
    backward: (inputs, saved, cotangent, params) =>
      backward(plan(params)!, inputs, saved as GpuBuffer | null, cotangent as GpuBuffer),
  };
}
