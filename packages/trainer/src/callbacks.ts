import { TrainerError } from './errors.js';
import type { TrainerCallbacks } from './train-types.js';

/** Options of {@link earlyStopping}. */
export interface EarlyStoppingOptions {
  /** Validations in a row without a new best (by `train`'s `bestMetric`) before the run ends. */
  patience: number;
}

/**
 * Early stopping as a training callback (tfjs-layers' `EarlyStopping`, Lightning's `EarlyStopping`): after
 * `patience` validations in a row without a new best, the run ends as if its length were reached, with its
 * final validation, checkpoint and report (of the best checkpoint). A resumed run goes on counting from its
 * recorded validations (`TrainBeginEvent.validationsSinceBest`): interrupting a run does not reset its patience.
 *
 * With a cosine schedule the best validations tend to come last, when the learning rate is low: patience
 * shorter than the run's last third stops before them.
 * @example train({ ...options, callbacks: [earlyStopping({ patience: 3 })] })
 */
export function earlyStopping(options: EarlyStoppingOptions): TrainerCallbacks {
  if (!Number.isInteger(options.patience) || options.patience < 1) {
    throw new TrainerError(
      'invalid-options',
      `patience must be a positive integer, got ${String(options.patience)}`,
    );
  }
  let since = 0;
  return {
    onTrainBegin(event) {
      since = event.validationsSinceBest;
    },
    onValidation(event) {
      since = event.best ? 0 : since + 1;
      if (since >= options.patience) {
        event.stop(
          `no better validation in ${options.patience} validation${options.patience === 1 ? '' : 's'}`,
        );
      }
    },
  };
}
