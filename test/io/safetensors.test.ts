import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  describeNonFinite,
  halfToFloat,
  type NamedArray,
  nonFiniteValues,
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
} from '../../src/io/safetensors.js';

/** node:crypto's SHA-256, independent of the module under test. */
const sha256 = (bytes: Uint8Array | number[]) =>
  createHash('sha256').update(Uint8Array.from(bytes)).digest('hex');

// ---------------------------------------------------------------------------------------------
// Hand-built files. These helpers deliberately do not use the module under test, so a bug shared
// by its writer and reader cannot make a test pass.
// ---------------------------------------------------------------------------------------------

/** Little-endian u64 header length + header text (as given, no padding) + data bytes. */
function buildFile(header: string | Uint8Array, data: number[] | Uint8Array = []): Uint8Array {
  const headerBytes = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  let n = headerBytes.length;
  for (let i = 0; i < 8; i++) {
    out[i] = n % 256;
    n = Math.floor(n / 256);
  }
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

/** Little-endian bytes of 16-bit words. */
function u16Bytes(words: number[]): number[] {
  return words.flatMap((w) => [w & 0xff, w >> 8]);
}

/** Little-endian bytes of 64-bit integers given as bigint. */
function i64Bytes(values: bigint[]): number[] {
  return values.flatMap((v) => {
    let u = BigInt.asUintN(64, v);
    const bytes: number[] = [];
    for (let i = 0; i < 8; i++) {
      bytes.push(Number(u & 0xffn));
      u >>= 8n;
    }
    return bytes;
  });
}

/** Header length field of a file image, read independently of the module. */
function headerLengthOf(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
}

/** Asserts that `fn` throws a SafetensorsError starting with `source` and matching `problem`. */
function assertRejects(fn: () => unknown, source: string, problem: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof SafetensorsError, `expected SafetensorsError, got ${String(error)}`);
    assert.ok(
      error.message.startsWith(`${source}: `),
      `message should start with the source: ${error.message}`,
    );
    assert.match(error.message, problem);
    assert.equal(error.source, source);
    return true;
  });
}

const f32 = (shape: number[], values: number[]): NamedArray => ({
  dtype: 'float32',
  shape,
  data: new Float32Array(values),
});
const f64 = (shape: number[], values: number[]): NamedArray => ({
  dtype: 'float64',
  shape,
  data: new Float64Array(values),
});
const i32 = (shape: number[], values: number[]): NamedArray => ({
  dtype: 'int32',
  shape,
  data: new Int32Array(values),
});

/** A file with several dtypes, odd sizes and metadata, used by the corruption tests. */
function sampleFile(): Uint8Array {
  return serializeSafetensors(
    {
      'layer.weight': f32([2, 3], [1, 2, 3, 4, 5, 6]),
      'layer.bias': f64([3], [0.5, -0.25, 1e300]),
      steps: i32([5], [1, -2, 3, -4, 5]),
      scalar: f32([], [42]),
      empty: f32([0, 3], []),
    },
    { format: 'titans', note: 'sample' },
  );
}

describe('safetensors round trip', () => {
  it('keeps F32, F64 and I32 tensors, scalars, empty and odd-sized ones exactly', () => {
    const tensors: Record<string, NamedArray> = {
      a: f32([2, 3], [1, -2, 3.5, Number.NaN, Number.POSITIVE_INFINITY, -0]),
      b: f64([5], [Math.PI, -1e-300, 1e300, Number.NEGATIVE_INFINITY, 0]),
      c: i32([7], [0, 1, -1, 2147483647, -2147483648, 12345, -54321]),
      scalar: f32([], [7.25]),
      scalar64: f64([], [-3]),
      empty: f32([0, 3], []),
      emptyInt: i32([0], []),
      odd: f32([3, 1, 1], [0.1, 0.2, 0.3]),
      'wéird näme/ü.0': i32([1], [9]),
      '12': f32([1], [12]),
    };
    const parsed = parseSafetensors(serializeSafetensors(tensors));
    assert.deepEqual(Object.keys(parsed.tensors).sort(), Object.keys(tensors).sort());
    for (const [name, tensor] of Object.entries(tensors)) {
      const got = parsed.tensors[name]!;
      assert.equal(got.dtype, tensor.dtype, name);
      assert.deepEqual(got.shape, tensor.shape, name);
      // deepStrictEqual on typed arrays checks the array type and compares with Object.is,
      // so NaN must stay NaN and -0 must stay -0.
      assert.deepEqual(got.data, tensor.data, name);
    }
    assert.deepEqual(parsed.metadata, {});
  });

  it('round-trips string metadata, including unicode and empty strings', () => {
    const metadata = { format: 'pt', clé: 'välue ✓', empty: '', json: '{"a":[1,2]}' };
    const parsed = parseSafetensors(serializeSafetensors({ x: f32([1], [1]) }, metadata));
    assert.deepEqual(parsed.metadata, metadata);
  });

  it('accepts a file with no tensors at all', () => {
    const parsed = parseSafetensors(serializeSafetensors({}, { only: 'metadata' }));
    assert.deepEqual(parsed, { tensors: {}, metadata: { only: 'metadata' }, checksums: {} });
  });

  it('keeps a tensor named __proto__ as an ordinary entry', () => {
    const tensors: Record<string, NamedArray> = Object.fromEntries([['__proto__', f32([2], [1, 2])]]);
    const parsed = parseSafetensors(serializeSafetensors(tensors));
    assert.ok(Object.hasOwn(parsed.tensors, '__proto__'));
    assert.deepEqual(
      Object.getOwnPropertyDescriptor(parsed.tensors, '__proto__')?.value.data,
      new Float32Array([1, 2]),
    );
    assert.equal(Object.getPrototypeOf(parsed.tensors), Object.prototype);
  });

  it('pads the header with spaces so 8 + N is a multiple of 8, for every header size mod 8', () => {
    for (let length = 1; length <= 24; length++) {
      const name = 'n'.repeat(length);
      const bytes = serializeSafetensors({ [name]: f64([3], [1, 2, 3]) });
      const n = headerLengthOf(bytes);
      assert.equal((8 + n) % 8, 0, `name length ${length}: header length ${n}`);
      const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      assert.match(header, /^\{.*\} *$/, 'header is JSON followed only by spaces');
      assert.ok(header.length - header.trimEnd().length < 8, 'never more than 7 padding spaces');
      assert.equal(bytes.length, 8 + n + 24);
    }
  });

  it('writes tensors contiguously in sorted name order', () => {
    const bytes = serializeSafetensors({ c: i32([1], [3]), a: i32([1], [1]), b: i32([2], [2, 2]) });
    const n = headerLengthOf(bytes);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    assert.deepEqual(header.a.data_offsets, [0, 4]);
    assert.deepEqual(header.b.data_offsets, [4, 12]);
    assert.deepEqual(header.c.data_offsets, [12, 16]);
  });

  it('serializes a subarray view using only its own elements', () => {
    const big = new Float32Array([9, 9, 1, 2, 3, 9]);
    const view = big.subarray(2, 5);
    const parsed = parseSafetensors(
      serializeSafetensors({ v: { dtype: 'float32', shape: [3], data: view } }),
    );
    assert.deepEqual(parsed.tensors.v!.data, new Float32Array([1, 2, 3]));
  });

  it('round-trips random tensors (property)', () => {
    const tensorArb = fc.oneof(
      fc.array(fc.float(), { maxLength: 20 }).map((v): NamedArray => f32([v.length], v)),
      fc.array(fc.double(), { maxLength: 20 }).map((v): NamedArray => f64([v.length], v)),
      fc
        .array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 20 })
        .map((v): NamedArray => i32([v.length], v)),
    );
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== '__metadata__'),
          tensorArb,
          // Plain objects, to compare with what the parser returns.
          { maxKeys: 6, noNullPrototype: true },
        ),
        fc.dictionary(
          fc.string({ maxLength: 8 }).filter((k) => !k.startsWith('sha256.')),
          fc.string({ maxLength: 8 }),
          {
            maxKeys: 3,
            noNullPrototype: true,
          },
        ),
        (tensors, metadata) => {
          const bytes = serializeSafetensors(tensors, metadata);
          assert.equal((8 + headerLengthOf(bytes)) % 8, 0);
          const parsed = parseSafetensors(bytes);
          assert.deepEqual(parsed.tensors, tensors);
          assert.deepEqual(parsed.metadata, metadata);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('safetensors byte layout', () => {
  // {"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 bytes; 8 + 54 = 62, so two
  // padding spaces bring the header to 56 bytes and the data to offset 64.
  const headerText = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  ';
  const lengthField = [56, 0, 0, 0, 0, 0, 0, 0]; // 56 as a little-endian u64
  const one = [0x00, 0x00, 0x80, 0x3f]; // 1.0f, bits 0x3f800000, little-endian
  const minusTwoAndAHalf = [0x00, 0x00, 0x20, 0xc0]; // -2.5f, bits 0xc0200000, little-endian
  const headerBytes = Array.from(headerText, (c) => c.charCodeAt(0));
  const expected = new Uint8Array([...lengthField, ...headerBytes, ...one, ...minusTwoAndAHalf]);

  it('writes exactly the hand-written bytes for one F32 tensor (without hashes)', () => {
    assert.equal(headerText.length, 56);
    const bytes = serializeSafetensors({ x: f32([2], [1, -2.5]) }, undefined, { hash: false });
    assert.deepEqual(Array.from(bytes), Array.from(expected));
  });

  it("records each tensor's SHA-256 of its little-endian bytes as __metadata__ sha256.<name>", () => {
    const hash = sha256([...one, ...minusTwoAndAHalf]);
    const json = `{"__metadata__":{"k":"v","sha256.x":"${hash}"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`;
    const padded = json + ' '.repeat(Math.ceil((8 + json.length) / 8) * 8 - 8 - json.length);
    const file = buildFile(padded, [...one, ...minusTwoAndAHalf]);
    const bytes = serializeSafetensors({ x: f32([2], [1, -2.5]) }, { k: 'v' });
    assert.deepEqual(Array.from(bytes), Array.from(file));
    const parsed = parseSafetensors(bytes);
    assert.deepEqual(parsed.metadata, { k: 'v' }, 'the hashes are not user metadata');
    assert.deepEqual(parsed.checksums, { x: hash });
  });

  it('reads the hand-written bytes', () => {
    const parsed = parseSafetensors(expected);
    assert.deepEqual(parsed.tensors, { x: f32([2], [1, -2.5]) });
  });

  it('reads a header in any key order, locating tensors by their offsets', () => {
    const file = buildFile(
      '{"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"k":"v"},' +
        '"a":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}}',
      [7, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff],
    );
    const parsed = parseSafetensors(file);
    assert.deepEqual(parsed.tensors, { a: i32([1], [-2]), b: i32([1], [7]) });
    assert.deepEqual(parsed.metadata, { k: 'v' });
  });

  it('copies out of an unaligned input into fresh aligned arrays', () => {
    const file = serializeSafetensors({ d: f64([2], [1.5, -2.25]), i: i32([1], [5]) });
    const backing = new Uint8Array(file.length + 3);
    backing.set(file, 1); // byteOffset 1: no Float64Array could be placed on it directly
    const input = backing.subarray(1, 1 + file.length);
    const parsed = parseSafetensors(input);
    const d = parsed.tensors.d!.data;
    assert.ok(d instanceof Float64Array);
    assert.equal(d.byteOffset, 0);
    assert.deepEqual(d, new Float64Array([1.5, -2.25]));
    backing.fill(0); // the result must not alias the input
    assert.deepEqual(d, new Float64Array([1.5, -2.25]));
    assert.deepEqual(parsed.tensors.i!.data, new Int32Array([5]));
  });
});

describe('safetensors reading of other dtypes', () => {
  it('decodes F16, including subnormals, infinities and NaN', () => {
    const words = [0x3c00, 0xc100, 0x7bff, 0x0000, 0x8000, 0x0001, 0x0400, 0x3555, 0x7c00, 0xfc00, 0x7e00];
    const file = buildFile(`{"h":{"dtype":"F16","shape":[11],"data_offsets":[0,22]}}`, u16Bytes(words));
    const h = parseSafetensors(file).tensors.h!;
    assert.equal(h.dtype, 'float32');
    assert.deepEqual(h.shape, [11]);
    const expected = [
      1,
      -2.5,
      65504,
      0,
      -0,
      2 ** -24,
      2 ** -14,
      0.333251953125,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
    ];
    assert.deepEqual(h.data, new Float32Array(expected));
  });

  it('halfToFloat matches known values', () => {
    assert.equal(halfToFloat(0x3c00), 1);
    assert.equal(halfToFloat(0xc100), -2.5);
    assert.equal(halfToFloat(0x7bff), 65504);
    assert.equal(halfToFloat(0x03ff), 1023 * 2 ** -24);
  });

  it('decodes BF16', () => {
    const words = [0x3f80, 0xc020, 0x4049, 0x7f7f, 0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0];
    const file = buildFile(`{"b":{"dtype":"BF16","shape":[3,3],"data_offsets":[0,18]}}`, u16Bytes(words));
    const b = parseSafetensors(file).tensors.b!;
    assert.equal(b.dtype, 'float32');
    assert.deepEqual(b.shape, [3, 3]);
    const expected = [
      1,
      -2.5,
      3.140625,
      3.3895313892515355e38,
      0,
      -0,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
    ];
    assert.deepEqual(b.data, new Float32Array(expected));
  });

  it('decodes I64 into int32 when every value fits', () => {
    const values = [0n, 1n, -1n, 2147483647n, -2147483648n, 123456789n];
    const file = buildFile(`{"t":{"dtype":"I64","shape":[2,3],"data_offsets":[0,48]}}`, i64Bytes(values));
    const t = parseSafetensors(file).tensors.t!;
    assert.deepEqual(t, i32([2, 3], values.map(Number)));
  });

  it('rejects I64 values outside int32, naming the tensor and the value', () => {
    for (const bad of [2147483648n, -2147483649n, 2n ** 40n, -(2n ** 62n)]) {
      const file = buildFile(
        `{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}`,
        i64Bytes([5n, bad]),
      );
      assertRejects(
        () => parseSafetensors(file, 'ids.safetensors'),
        'ids.safetensors',
        new RegExp(`"ids".*${bad}.*int32`),
      );
    }
  });

  it('decodes I16, I8 and U8 into int32', () => {
    const file = buildFile(
      '{"s":{"dtype":"I16","shape":[2],"data_offsets":[0,4]},' +
        '"b":{"dtype":"I8","shape":[2],"data_offsets":[4,6]},' +
        '"u":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}}',
      [0xff, 0xff, 0x00, 0x80, 0x80, 0x7f, 0xff, 0x01],
    );
    const { tensors } = parseSafetensors(file);
    assert.deepEqual(tensors.s, i32([2], [-1, -32768]));
    assert.deepEqual(tensors.b, i32([2], [-128, 127]));
    assert.deepEqual(tensors.u, i32([2], [255, 1]));
  });
});

describe('safetensors corruption is rejected', () => {
  const src = 'model.safetensors';

  it('throws for every truncated length, never returning garbage', () => {
    const file = sampleFile();
    for (let length = 0; length < file.length; length++) {
      assertRejects(() => parseSafetensors(file.subarray(0, length), src), src, /./);
    }
    // Sanity: the full file parses.
    assert.equal(Object.keys(parseSafetensors(file, src).tensors).length, 5);
  });

  it('names the problem for the characteristic truncation points', () => {
    const file = sampleFile();
    const n = headerLengthOf(file);
    assertRejects(() => parseSafetensors(file.subarray(0, 5), src), src, /5 bytes, too short/);
    assertRejects(
      () => parseSafetensors(file.subarray(0, 8 + n - 1), src),
      src,
      new RegExp(`header length ${n} exceeds file size ${8 + n - 1}`),
    );
    assertRejects(() => parseSafetensors(file.subarray(0, file.length - 1), src), src, /truncated/);
  });

  it('rejects a flipped or absurd header length', () => {
    const file = sampleFile();
    const view = new DataView(file.buffer);
    const withLength = (length: bigint) => {
      const copy = file.slice();
      new DataView(copy.buffer).setBigUint64(0, length, true);
      return copy;
    };
    assertRejects(
      () => parseSafetensors(withLength(999999n), src),
      src,
      new RegExp(`header length 999999 exceeds file size ${file.length}`),
    );
    assertRejects(() => parseSafetensors(withLength(2n ** 64n - 1n), src), src, /absurd/);
    assertRejects(() => parseSafetensors(withLength(200_000_000n), src), src, /absurd/);
    assertRejects(() => parseSafetensors(withLength(0n), src), src, /not valid JSON/);
    // Shorter than the real header: the JSON is cut off.
    assertRejects(() => parseSafetensors(withLength(BigInt(view.getUint32(0, true) - 16)), src), src, /JSON/);
  });

  it('rejects a header that is not UTF-8, not JSON, or not an object', () => {
    assertRejects(
      () => parseSafetensors(buildFile(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), src),
      src,
      /UTF-8/,
    );
    assertRejects(() => parseSafetensors(buildFile('{"a": '), src), src, /header is not valid JSON \(.+\)/);
    assertRejects(() => parseSafetensors(buildFile('[1, 2]'), src), src, /JSON object/);
    assertRejects(() => parseSafetensors(buildFile('null'), src), src, /JSON object/);
    assertRejects(() => parseSafetensors(buildFile('"text"'), src), src, /JSON object/);
  });

  it('rejects malformed entries, naming the tensor', () => {
    const cases: [string, RegExp][] = [
      ['{"w":3}', /"w": entry must be an object/],
      ['{"w":{"shape":[1],"data_offsets":[0,4]}}', /"w": missing "dtype"/],
      ['{"w":{"dtype":"F32","data_offsets":[0,4]}}', /"w": missing "shape"/],
      ['{"w":{"dtype":"F32","shape":[1]}}', /"w": missing "data_offsets"/],
      ['{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}', /"w": "dtype" must be a string/],
      ['{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}', /"w": "shape" must be an array/],
      ['{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', /"w": "data_offsets" must be two/],
      ['{"w":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}}', /"w": "data_offsets" must be two/],
      ['{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', /"w": "data_offsets" must be two/],
      ['{"w":{"dtype":"F32","shape":[1],"data_offsets":[0.5,4.5]}}', /"w": "data_offsets" must be two/],
      ['{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,4]}}', /"w": unknown dtype "F8_E4M3"/],
      ['{"w":{"dtype":"toString","shape":[1],"data_offsets":[0,4]}}', /"w": unknown dtype "toString"/],
      [
        '{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}',
        /"w": shape \[-1\] must hold non-negative integers/,
      ],
      [
        '{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}',
        /"w": shape \[1.5\] must hold non-negative/,
      ],
      ['{"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}', /"w": shape .* must hold non-negative/],
      ['{"w":{"dtype":"F32","shape":[1e300,1e300],"data_offsets":[0,4]}}', /"w": shape .* must hold/],
      [
        '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}',
        /"w": data_offsets \[0, 4\] span 4 bytes but F32 shape \[2\] needs 8/,
      ],
      ['{"w":{"dtype":"F64","shape":[1],"data_offsets":[0,4]}}', /"w": .* needs 8/],
      [
        '{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}',
        /"w": data_offsets \[4, 0\] end before they begin/,
      ],
      [
        '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
        /"w": data_offsets \[0, 8\] run past the data buffer of 4 bytes/,
      ],
      ['{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', /"w".*run past/],
    ];
    for (const [header, problem] of cases) {
      assertRejects(() => parseSafetensors(buildFile(header, [0, 0, 0, 0]), src), src, problem);
    }
  });

  it('rejects overlapping tensors, gaps and trailing bytes', () => {
    const data = new Array(12).fill(0);
    const entry = (name: string, begin: number, end: number) =>
      `"${name}":{"dtype":"U8","shape":[${end - begin}],"data_offsets":[${begin},${end}]}`;
    assertRejects(
      () => parseSafetensors(buildFile(`{${entry('a', 0, 8)},${entry('b', 4, 12)}}`, data), src),
      src,
      /tensor "b" \[4, 12\] overlaps tensor "a" \[0, 8\]/,
    );
    assertRejects(
      () => parseSafetensors(buildFile(`{${entry('a', 0, 12)},${entry('b', 0, 12)}}`, data), src),
      src,
      /overlaps/,
    );
    assertRejects(
      () => parseSafetensors(buildFile(`{${entry('a', 0, 4)},${entry('b', 8, 12)}}`, data), src),
      src,
      /gap in data buffer: bytes \[4, 8\)/,
    );
    assertRejects(
      () => parseSafetensors(buildFile(`{${entry('a', 4, 12)}}`, data), src),
      src,
      /gap in data buffer: bytes \[0, 4\)/,
    );
    assertRejects(
      () => parseSafetensors(buildFile(`{${entry('a', 0, 4)}}`, data), src),
      src,
      /data buffer is 12 bytes but the tensors cover only 4/,
    );
    assertRejects(() => parseSafetensors(buildFile('{}', [1]), src), src, /cover only 0/);
    // Empty tensors sharing an offset with a real one are fine.
    const ok = parseSafetensors(
      buildFile(`{${entry('e', 4, 4)},${entry('a', 0, 4)},${entry('b', 4, 12)},${entry('z', 12, 12)}}`, data),
    );
    assert.deepEqual(Object.keys(ok.tensors).sort(), ['a', 'b', 'e', 'z']);
  });

  it('rejects non-string metadata', () => {
    assertRejects(
      () => parseSafetensors(buildFile('{"__metadata__":{"step":100}}'), src),
      src,
      /__metadata__ value for "step" must be a string, got 100/,
    );
    assertRejects(
      () => parseSafetensors(buildFile('{"__metadata__":["a"]}'), src),
      src,
      /__metadata__ must be an object/,
    );
    assertRejects(
      () => parseSafetensors(buildFile('{"__metadata__":null}'), src),
      src,
      /__metadata__ must be an object/,
    );
  });

  it('uses <buffer> as the default source name', () => {
    assertRejects(() => parseSafetensors(new Uint8Array(3)), '<buffer>', /too short/);
  });

  it('on randomly damaged files, only throws SafetensorsError or returns the original bytes (property)', () => {
    const file = sampleFile();
    const original = parseSafetensors(file, src).tensors;
    const bytesOf = (t: NamedArray) =>
      Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: file.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (edits) => {
          const damaged = file.slice();
          for (const [at, value] of edits) damaged[at] = value;
          try {
            const parsed = parseSafetensors(damaged, src);
            // If it parsed, every tensor is one of the originals with its bytes intact: the
            // per-tensor hashes cover the data, and a renamed tensor loses its hash entry.
            for (const [name, t] of Object.entries(parsed.tensors)) {
              assert.ok(Object.hasOwn(original, name), `unexpected tensor ${name}`);
              assert.deepEqual(bytesOf(t), bytesOf(original[name]!), `tensor ${name} changed silently`);
            }
          } catch (error) {
            if (error instanceof assert.AssertionError) throw error;
            assert.ok(error instanceof SafetensorsError, `unexpected ${String(error)}`);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('safetensors checksums', () => {
  const src = 'model.safetensors';

  it('names the tensor whose data no longer matches its recorded SHA-256', () => {
    const file = sampleFile();
    const { tensors } = parseSafetensors(file, src);
    const damaged = file.slice();
    damaged[damaged.length - 1]! ^= 0x01; // the last byte belongs to 'steps' (sorted last)
    assertRejects(
      () => parseSafetensors(damaged, src),
      src,
      /tensor "steps": its data does not match the SHA-256/,
    );
    assert.equal(Object.keys(tensors).length, 5);
    // `hash: false` skips the check (for bytes proven otherwise, e.g. by a manifest).
    assert.equal(parseSafetensors(damaged, src, { hash: false }).tensors.steps!.data[4], 5 ^ (1 << 24));
  });

  it('refuses malformed hash entries, hashes of missing tensors and reserved metadata keys', () => {
    const data = [0, 0, 0x80, 0x3f];
    const entry = '"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    assertRejects(
      () => parseSafetensors(buildFile(`{"__metadata__":{"sha256.x":"abc"},${entry}}`, data), src),
      src,
      /"sha256\.x" must be 64 lowercase hex digits/,
    );
    assertRejects(
      () =>
        parseSafetensors(buildFile(`{"__metadata__":{"sha256.y":"${sha256(data)}"},${entry}}`, data), src),
      src,
      /"sha256\.y" but there is no tensor "y"/,
    );
    assert.equal(
      parseSafetensors(buildFile(`{"__metadata__":{"sha256.x":"${sha256(data)}"},${entry}}`, data), src)
        .checksums.x,
      sha256(data),
    );
    assertRejects(
      () => serializeSafetensors({ x: f32([1], [1]) }, { 'sha256.x': sha256(data) }),
      '<serialize>',
      /reserved for the tensor hashes/,
    );
  });

  it('refuses a file where some tensors have a hash and others not (a damaged key)', () => {
    const file = sampleFile();
    const text = new TextDecoder().decode(file);
    const at = text.indexOf('sha256.steps');
    const damaged = file.slice();
    damaged[at] = 'S'.charCodeAt(0); // "Sha256.steps" is plain metadata now
    assertRejects(
      () => parseSafetensors(damaged, src),
      src,
      /tensor "steps" has no "sha256\.steps" .* while other tensors do/,
    );
  });

  it('still reads files without hashes (written by other tools)', () => {
    const parsed = parseSafetensors(serializeSafetensors({ x: f32([1], [3]) }, { a: 'b' }, { hash: false }));
    assert.deepEqual(parsed.checksums, {});
    assert.deepEqual(parsed.tensors.x!.data, new Float32Array([3]));
  });
});

describe('non-finite values', () => {
  it('counts NaN and ±Infinity per tensor with the first index, ignoring int arrays', () => {
    const report = nonFiniteValues({
      b: f32([4], [1, Number.NaN, Number.POSITIVE_INFINITY, 2]),
      a: f64([2], [Number.NEGATIVE_INFINITY, 0]),
      ok: f32([1], [3]),
      n: i32([1], [7]),
    });
    assert.deepEqual(report, {
      count: 3,
      nan: 1,
      infinite: 2,
      tensors: [
        { name: 'a', count: 1, firstIndex: 0 },
        { name: 'b', count: 2, firstIndex: 1 },
      ],
    });
    assert.equal(
      describeNonFinite(report),
      '3 non-finite values (1 NaN, 2 ±Infinity) in 2 tensors: "a" (1, first at index 0), "b" (2, first at index 1)',
    );
  });
});

describe('safetensors serialize validation', () => {
  const src = '<serialize>';

  it('rejects data whose length differs from the shape', () => {
    assertRejects(
      () => serializeSafetensors({ w: f32([2, 2], [1, 2, 3]) }),
      src,
      /"w": data has 3 elements but shape \[2, 2\] needs 4/,
    );
    assertRejects(() => serializeSafetensors({ s: f32([], []) }), src, /"s": data has 0 elements .* needs 1/);
  });

  it('rejects empty and reserved names', () => {
    assertRejects(() => serializeSafetensors({ '': f32([1], [1]) }), src, /name must not be empty/);
    assertRejects(() => serializeSafetensors({ __metadata__: f32([1], [1]) }), src, /reserved/);
  });

  it('rejects bad shapes, mismatched array types and unknown dtypes', () => {
    assertRejects(() => serializeSafetensors({ w: f32([-1], []) }), src, /"w": shape must be/);
    assertRejects(() => serializeSafetensors({ w: f32([0.5], []) }), src, /"w": shape must be/);
    const mixed = { dtype: 'float32', shape: [1], data: new Float64Array(1) } as NamedArray;
    assertRejects(
      () => serializeSafetensors({ w: mixed }),
      src,
      /"w": dtype float32 needs a Float32Array, got Float64Array/,
    );
    const unknown = { dtype: 'float16', shape: [1], data: new Float32Array(1) } as unknown as NamedArray;
    assertRejects(() => serializeSafetensors({ w: unknown }), src, /"w": unsupported dtype "float16"/);
  });

  it('rejects non-string metadata values', () => {
    const metadata = { step: 5 } as unknown as Record<string, string>;
    assertRejects(() => serializeSafetensors({}, metadata), src, /metadata "step" must be a string/);
  });
});
