/**
 * What a config costs, before anything is allocated: the parameter count agrees with initModel
 * for every variant and switch, and a config past the memory limit is refused at once, naming
 * the field (a `layers` of 10⁹ used to grow without bound; a `vocabSize` of 10⁹ failed with
 * "Invalid typed array length").
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dispose, Rng } from '../../src/index.js';
import { MODEL_VARIANTS, resolveConfig, type TitansConfigInput } from '../../src/models/config.js';
import { countParameters, initModel } from '../../src/models/model.js';
import {
  checkModelSize,
  DEFAULT_MAX_MODEL_BYTES,
  estimatedBytes,
  ModelTooLargeError,
  parameterCount,
} from '../../src/models/resources.js';

const small: Omit<TitansConfigInput, 'variant'> = {
  vocabSize: 40,
  dModel: 8,
  layers: 3,
  heads: 2,
  window: 4,
  segmentSize: 4,
  persistentTokens: 2,
  memory: { heads: 2, headDim: 4, expansion: 2, chunkSize: 2 },
};

describe('parameterCount', () => {
  it('equals countParameters(initModel(config)) for every variant and switch', () => {
    const switches: Partial<TitansConfigInput>[] = [
      {},
      { tieEmbeddings: false },
      { memoryLayers: [0, 2] },
      { persistentTokens: 0, mlpHidden: 12 },
      { memory: { heads: 2, headDim: 4, depth: 1, convKernel: 0 } },
      { memory: { heads: 1, headDim: 6, depth: 3, expansion: 3, momentum: false, forgetting: false } },
    ];
    for (const variant of MODEL_VARIANTS) {
      for (const change of switches) {
        const config = resolveConfig({ ...small, variant, ...change } as TitansConfigInput);
        const params = initModel(config, new Rng(0));
        assert.equal(parameterCount(config), countParameters(params), `${variant} ${JSON.stringify(change)}`);
        dispose(params);
      }
    }
  });

  it('estimates weights, and four copies plus the logits when training', () => {
    const config = resolveConfig({ ...small, variant: 'mag' } as TitansConfigInput);
    const n = parameterCount(config);
    assert.equal(estimatedBytes(config), 4 * n);
    assert.equal(estimatedBytes(config, { bytesPerValue: 8 }), 8 * n);
    assert.equal(
      estimatedBytes(config, { training: { batchSize: 2, seqLen: 5 } }),
      16 * n + 2 * 2 * 5 * 40 * 4,
    );
  });
});

describe('the memory limit', () => {
  const refuses = (input: Partial<TitansConfigInput>, field: RegExp) => {
    const started = performance.now();
    assert.throws(
      () => resolveConfig({ ...small, variant: 'mag', ...input } as TitansConfigInput),
      (e: unknown) => {
        assert.ok(e instanceof ModelTooLargeError, String(e));
        assert.match(e.field, field);
        assert.match(
          e.message,
          /^config: \S+ = \d+ makes the model too large: .* more than the limit of 8 GiB/,
        );
        assert.match(e.message, /maxBytes option, --max-memory/);
        return true;
      },
    );
    assert.ok(performance.now() - started < 1000, 'refused before allocating anything');
  };

  it('refuses configs past 8 GiB at once, naming the field that makes them large', () => {
    refuses({ layers: 1_000_000_000 }, /^layers$/);
    refuses({ vocabSize: 1_000_000_000 }, /^vocabSize$/);
    refuses({ mlpHidden: 1_000_000_000 }, /^mlpHidden$/);
    refuses({ persistentTokens: 1_000_000_000 }, /^persistentTokens$/);
    refuses({ dModel: 1_000_000, heads: 2, memory: { heads: 2, headDim: 4 } }, /^dModel$/);
    refuses({ memory: { heads: 2, headDim: 4, expansion: 100_000_000 } }, /^memory\.expansion$/);
    refuses({ memory: { heads: 2, headDim: 4, depth: 1_000_000_000 } }, /^memory\.depth$/);
  });

  it('is a limit the caller may raise (or lower)', () => {
    const input = { ...small, variant: 'mag', layers: 1_000_000_000 } as TitansConfigInput;
    const config = resolveConfig(input, { maxBytes: Number.POSITIVE_INFINITY });
    assert.equal(config.layers, 1_000_000_000);
    assert.throws(
      () => resolveConfig({ ...small, variant: 'mag' } as TitansConfigInput, { maxBytes: 1000 }),
      /limit of 1000 bytes/,
    );
    assert.equal(DEFAULT_MAX_MODEL_BYTES, 8 * 2 ** 30);
  });

  it('names the batch dimension when the logits of a training batch are what is too large', () => {
    const config = resolveConfig({ ...small, variant: 'mag' } as TitansConfigInput);
    assert.throws(
      () => checkModelSize(config, { training: { batchSize: 8, seqLen: 1_000_000_000 } }),
      (e: unknown) =>
        e instanceof ModelTooLargeError &&
        e.field === 'seqLen' &&
        /training it needs at least/.test(e.message),
    );
  });
});

describe('config inputs', () => {
  it('accepts and ignores the Hugging Face fields model_type and architectures', () => {
    const config = resolveConfig({
      ...small,
      variant: 'mag',
      model_type: 'titans',
      architectures: ['TitansForCausalLM'],
    } as TitansConfigInput);
    assert.equal(Object.hasOwn(config, 'model_type'), false);
    assert.deepEqual(config, resolveConfig({ ...small, variant: 'mag' } as TitansConfigInput));
  });

  it('refuses a memory that is not an object, and completes a partial gateBias', () => {
    assert.throws(
      () => resolveConfig({ ...small, variant: 'mag', memory: 5 } as unknown as TitansConfigInput),
      /config: memory must be an object/,
    );
    const config = resolveConfig({
      ...small,
      variant: 'mag',
      memory: { ...small.memory, gateBias: { alpha: -3 } },
    } as TitansConfigInput);
    assert.deepEqual(config.memory.gateBias, { alpha: -3, eta: 0, theta: 0 });
    assert.throws(
      () =>
        resolveConfig({
          ...small,
          variant: 'mag',
          memory: { ...small.memory, gateBias: { beta: 1 } },
        } as unknown as TitansConfigInput),
      /unknown field 'memory\.gateBias\.beta'/,
    );
  });
});
