/**
 * Training plumbing: functional optimizers (state is data), learning-rate schedules, gradient
 * clipping (parameter trees and their flat names: engine/tree.ts).
 */
export { clipByGlobalNorm, globalNorm } from './clip.js';
export {
  DataParallel,
  type GradientWorker,
  type GradientWorkerSetup,
  gradientServer,
  gradientWorkerSetup,
  type ShardReply,
  type ShardRequest,
  shardSizes,
} from './data-parallel.js';
export {
  appendRecord,
  type HistoryRecord,
  historySteps,
  MAX_HISTORY_RECORDS,
  recentLoss,
  type StepRecord,
} from './history.js';
export {
  type AdamWOptions,
  adamw,
  decayMatricesOnly,
  type Optimizer,
  type OptimizerState,
  type OptimizerUpdate,
  type SgdOptions,
  sgd,
} from './optimizer.js';
export { constantLr, type LrSchedule, type WarmupCosineOptions, warmupCosine } from './schedule.js';
export {
  type BatchSource,
  DEFAULT_TRAIN_OPTIONS,
  evaluateLoss,
  initialTrainerState,
  languageModelLoss,
  resolveTrainOptions,
  type TrainData,
  type TrainerState,
  type TrainHooks,
  TrainingDivergedError,
  type TrainOptions,
  trainLanguageModel,
  yieldToEventLoop,
} from './trainer.js';
