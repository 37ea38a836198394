/**
 * Parameter and state trees: the one definition of what a tree is, and the one walker that
 * autodiff (gradient trees), tensor scopes (tidy, dispose), optimisers (moment slots), the
 * trainer, checkpoints (flat names) and parameter counting all use.
 *
 * A tree is made of containers — arrays and plain objects (prototype Object.prototype or null) —
 * and leaves: everything else (tensors, numbers, strings, booleans, null, undefined, typed
 * arrays, class instances). Walks go depth first: arrays by index, objects in key order
 * (Object.keys), so a tree's leaves and flat names always come in the same order.
 */
import { formatShape } from './shape.js';
// tensor.ts imports this module for tidy/dispose; the cycle is safe because both use the other
// only inside functions, never while their module is being evaluated.
import { Tensor } from './tensor.js';

/**
 * Nested records and arrays of tensors: model parameters, their gradients, optimizer moments,
 * model states. Leaves that are not tensors (numbers, strings, null, …) are carried along but
 * never touched; `valueAndGrad` gives such leaves a null gradient, and optimizers keep null
 * moments for them.
 *
 * @example
 * const params: TensorTree = { layers: [{ w: rng.normal([4, 4]), b: zeros([4]) }], scale: ones([4]) };
 */
export type TensorTree =
  | Tensor
  | null
  | undefined
  | number
  | string
  | boolean
  | readonly TensorTree[]
  | { readonly [key: string]: TensorTree };

/**
 * True for the containers a tree is made of: arrays and plain objects. Anything else (tensors,
 * typed arrays, class instances, Maps) is a leaf, so a stray Map or Date is never walked into.
 * @example isContainer({ w }); // true; isContainer(w), isContainer(new Float32Array(2)) → false
 */
export function isContainer(value: unknown): value is readonly unknown[] | Record<string, unknown> {
  if (Array.isArray(value)) return true;
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** @internal the dotted name of a child: 'layers' + 0 → 'layers.0'; at the root just the key. */
export function joinPath(prefix: string, key: string | number): string {
  return prefix === '' ? String(key) : `${prefix}.${key}`;
}

/**
 * Calls `visit` on every leaf (tensor or not) with its dotted path under `path`, depth first in
 * key order — the order `flattenTree` names entries in and `tensorLeaves` lists them.
 * @example forEachLeaf({ a: [x, 2] }, (leaf, path) => console.log(path)); // 'a.0', 'a.1'
 */
export function forEachLeaf(tree: unknown, visit: (leaf: unknown, path: string) => void, path = ''): void {
  if (Array.isArray(tree)) {
    for (let i = 0; i < tree.length; i++) forEachLeaf(tree[i], visit, joinPath(path, i));
  } else if (isContainer(tree)) {
    for (const [key, child] of Object.entries(tree)) forEachLeaf(child, visit, joinPath(path, key));
  } else {
    visit(tree, path);
  }
}

/**
 * Rebuilds a tree with the same containers, each leaf replaced by `fn(leaf, path)`. Arrays stay
 * arrays and objects become plain objects, so the result has the input's structure.
 * @example const doubled = mapLeaves(params, (leaf) => (leaf instanceof Tensor ? mul(leaf, 2) : leaf));
 */
export function mapLeaves(tree: unknown, fn: (leaf: unknown, path: string) => unknown, path = ''): unknown {
  if (Array.isArray(tree)) return tree.map((child, i) => mapLeaves(child, fn, joinPath(path, i)));
  if (isContainer(tree)) {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(tree)) out[key] = mapLeaves(child, fn, joinPath(path, key));
    return out;
  }
  return fn(tree, path);
}

/**
 * `mapLeaves` over `tree` with companion trees walked alongside: `fn` gets each leaf of `tree`
 * and what every companion holds at the same path. A companion must have `tree`'s containers
 * (same kind, same keys) down to `tree`'s leaves, except that null or undefined anywhere stands
 * for "nothing here" (its children are all null/undefined); what a companion holds below a leaf
 * of `tree` is handed to `fn` as is. A mismatch calls `mismatch` (which throws; by default a
 * RangeError) with the companion's index, the path (root '') and a description of what `tree`
 * has there.
 * @example
 * const sum = mapLeavesWith(a, [b], (x, [y]) => (x instanceof Tensor ? add(x, y as Tensor) : x));
 */
export function mapLeavesWith(
  tree: unknown,
  companions: readonly unknown[],
  fn: (leaf: unknown, companions: readonly unknown[], path: string) => unknown,
  mismatch: (index: number, path: string, expected: string) => never = structureMismatch,
  path = '',
): unknown {
  if (!isContainer(tree)) return fn(tree, companions, path);
  const isArray = Array.isArray(tree);
  const keys = isArray ? tree.map((_, i) => String(i)) : Object.keys(tree);
  companions.forEach((c, j) => {
    if (c === null || c === undefined) return;
    const cKeys = isContainer(c) ? new Set(Object.keys(c)) : null;
    if (
      cKeys === null ||
      Array.isArray(c) !== isArray ||
      cKeys.size !== keys.length ||
      !keys.every((k) => cKeys.has(k))
    ) {
      mismatch(j, path, isArray ? `an array of ${keys.length}` : `keys ${keys.join(', ')}`);
    }
  });
  const child = (key: string): unknown =>
    mapLeavesWith(
      (tree as Record<string, unknown>)[key],
      companions.map((c) => (c === null || c === undefined ? c : (c as Record<string, unknown>)[key])),
      fn,
      mismatch,
      joinPath(path, key),
    );
  return isArray ? keys.map(child) : Object.fromEntries(keys.map((k) => [k, child(k)]));
}

function structureMismatch(index: number, path: string, expected: string): never {
  throw new RangeError(
    `companion tree ${index} does not have the structure of the tree at ${path === '' ? 'the root' : `'${path}'`} (the tree has ${expected})`,
  );
}

/**
 * `mapLeaves` over the tensor leaves only: every other leaf (null, numbers, …) stays as it is.
 * @example const halved = mapTensors(grads, (g) => mul(g, 0.5));
 */
export function mapTensors(tree: unknown, fn: (t: Tensor, path: string) => Tensor): unknown {
  return mapLeaves(tree, (leaf, path) => (leaf instanceof Tensor ? fn(leaf, path) : leaf));
}

/**
 * Every distinct tensor leaf of a tree, in walk order (a tensor that appears twice is listed
 * once, where it first appears).
 * @example const n = tensorLeaves(params).reduce((s, t) => s + t.size, 0); // parameter count
 */
export function tensorLeaves(tree: unknown): Tensor[] {
  const found = new Set<Tensor>();
  forEachLeaf(tree, (leaf) => {
    if (leaf instanceof Tensor) found.add(leaf);
  });
  return [...found];
}

/**
 * Names every tensor leaf of a tree by its dotted path (array indices are path segments), under
 * `prefix`: the flat, named form that checkpoint files store. Non-tensor leaves (null moments,
 * the optimizer's `step` number, config values) are left out — store those as metadata.
 *
 * The result holds the tree's own tensors, not copies. Two different leaves that would get the
 * same name (a key containing a dot, e.g. `{ 'a.b': x, a: { b: y } }`) are an error rather than
 * one silently overwriting the other.
 *
 * @example
 * flattenTree({ layers: [{ wq: wq0 }], norm: g }, 'model'); // { 'model.layers.0.wq': wq0, 'model.norm': g }
 * flattenTree(state, 'opt'); // { 'opt.m.layers.0.wq': …, 'opt.v.layers.0.wq': …, … } (step left out)
 */
export function flattenTree(tree: unknown, prefix = ''): Record<string, Tensor> {
  const flat: Record<string, Tensor> = {};
  forEachLeaf(
    tree,
    (leaf, name) => {
      if (!(leaf instanceof Tensor)) return;
      if (name === '') {
        throw new RangeError('flattenTree: a bare tensor needs a non-empty prefix to be named by');
      }
      if (Object.hasOwn(flat, name)) {
        throw new RangeError(`flattenTree: two leaves are both named '${name}' (does a key contain a '.'?)`);
      }
      flat[name] = leaf;
    },
    prefix,
  );
  return flat;
}

function describe(t: Tensor): string {
  return `${t.dtype} ${formatShape(t.shape)}`;
}

/** Up to `limit` names, quoted, for error messages that should say what *is* there. */
function listNames(names: readonly string[], limit = 6): string {
  if (names.length === 0) return 'none';
  const shown = names.slice(0, limit).map((n) => `'${n}'`);
  return names.length > limit ? `${shown.join(', ')}, … (${names.length} in all)` : shown.join(', ');
}

/**
 * The inverse of `flattenTree`: a tree shaped like `template` whose tensor leaves are taken from
 * `flat` by their dotted names under `prefix`. The template is only read (structure, and each
 * tensor's shape and dtype, which the entry must match); its non-tensor leaves are copied.
 *
 * Every entry under `prefix` must be used and every template tensor must find its entry, so a
 * checkpoint from a different architecture fails loudly, naming the entry. Entries outside
 * `prefix` are ignored (one file can hold `model.*` and `opt.*`). The result shares `flat`'s
 * tensors: dispose the result or the record, not copies of both.
 *
 * @example
 * const flat = { ...flattenTree(params, 'model'), ...flattenTree(state, 'opt') };
 * const restored = unflattenInto(params, flat, 'model');              // same structure as params
 * const moments = unflattenInto(freshState, flat, 'opt');            // then set `step` from metadata
 */
export function unflattenInto<T>(template: T, flat: Readonly<Record<string, Tensor>>, prefix = ''): T {
  const under = Object.keys(flat).filter(
    (name) => prefix === '' || name === prefix || name.startsWith(`${prefix}.`),
  );
  const used = new Set<string>();
  const where = prefix === '' ? 'the flat record' : `the flat record under '${prefix}'`;
  const result = mapLeaves(
    template,
    (leaf, name) => {
      if (!(leaf instanceof Tensor)) return leaf;
      if (!Object.hasOwn(flat, name)) {
        throw new RangeError(
          `unflattenInto: missing entry '${name}' (expected ${describe(leaf)}) in ${where}; it has ${listNames(under)}`,
        );
      }
      const entry = flat[name];
      if (!(entry instanceof Tensor)) {
        throw new TypeError(`unflattenInto: entry '${name}' is not a Tensor`);
      }
      if (
        entry.dtype !== leaf.dtype ||
        entry.shape.length !== leaf.shape.length ||
        entry.shape.some((d, i) => d !== leaf.shape[i])
      ) {
        throw new RangeError(
          `unflattenInto: entry '${name}' is ${describe(entry)} but the template expects ${describe(leaf)}`,
        );
      }
      used.add(name);
      return entry;
    },
    prefix,
  );
  const extra = under.filter((name) => !used.has(name));
  if (extra.length > 0) {
    throw new RangeError(`unflattenInto: ${where} has entries the template does not: ${listNames(extra)}`);
  }
  return result as T;
}
