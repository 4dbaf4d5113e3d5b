// SPDX-License-Identifier: MIT
// Exponentially weighted moving mean and variance (West/Finch incremental form):
//   diff = x - mean; incr = alpha * diff; mean += incr; var = (1 - alpha) * (var + diff * incr)

export class Ewma {
  mean = 0;
  variance = 0;
  /** Samples folded in. */
  count = 0;

  constructor(readonly alpha: number) {
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError('alpha must be in (0, 1]');
  }

  /** Folds in one sample; `alpha` overrides the weight for this sample only. */
  update(x: number, alpha = this.alpha): void {
    if (this.count === 0) {
      this.mean = x;
      this.variance = 0;
    } else {
      const diff = x - this.mean;
      const incr = alpha * diff;
      this.mean += incr;
      this.variance = (1 - alpha) * (this.variance + diff * incr);
    }
    this.count++;
  }

  get stdDev(): number {
    return Math.sqrt(Math.max(0, this.variance));
  }

  /** How many deviations `x` lies above the mean, with the deviation floored at `minStdDev`. */
  zScore(x: number, minStdDev: number): number {
    return (x - this.mean) / Math.max(this.stdDev, minStdDev);
  }
}
