/**
 * One model of an experiment, trained and evaluated in a worker thread (see
 * `runExperimentJobs`): workerData is { dir, spec, name }. The wasm backend runs
 * single-threaded here; the parallelism is one model per core.
 */
import { workerData } from 'node:worker_threads';
import '../index.js'; // registers the backends (wasm the default), as the CLI's entry does
import { runExperiment } from './runner.js';
import { type ExperimentSpec, taskOfSpec } from './spec.js';

const { dir, spec, name } = workerData as { dir: string; spec: ExperimentSpec; name: string };
await runExperiment(dir, spec, await taskOfSpec(spec), [name], { quietReport: true });
