import { describe, expect, it } from "vitest";
import { metricsSchema } from "../src/contracts/card.js";
import {
  accuracy,
  argmax,
  confusionMatrix,
  equalEdges,
  evaluateClassifier,
  histogram,
  macroF1,
  meanStd,
  perClassScores,
  rocAuc,
} from "../src/metrics/index.js";

// Hand-computed: true [0,0,0,1,1,2], predicted [0,1,0,1,2,2]
//   confusion rows: [2,1,0] [0,1,1] [0,0,1]
//   class 0: P 2/2, R 2/3, F1 0.8 · class 1: P 1/2, R 1/2, F1 0.5 · class 2: P 1/2, R 1/1, F1 2/3
const yTrue = [0, 0, 0, 1, 1, 2];
const yPred = [0, 1, 0, 1, 2, 2];

describe("classification metrics", () => {
  it("confusion matrix rows are true labels, columns predictions", () => {
    expect(confusionMatrix(yTrue, yPred, 3)).toEqual([
      [2, 1, 0],
      [0, 1, 1],
      [0, 0, 1],
    ]);
  });

  it("accuracy, per-class scores and macro-F1 match the hand computation", () => {
    expect(accuracy(yTrue, yPred)).toBeCloseTo(4 / 6, 12);
    const scores = perClassScores(confusionMatrix(yTrue, yPred, 3));
    expect(scores[0]).toEqual({
      precision: 1,
      recall: expect.closeTo(2 / 3, 12),
      f1: expect.closeTo(0.8, 12),
      support: 3,
    });
    expect(scores[1]).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5, support: 2 });
    expect(scores[2]).toEqual({ precision: 0.5, recall: 1, f1: expect.closeTo(2 / 3, 12), support: 1 });
    expect(macroF1(scores)).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 12);
  });

  it("zero division gives 0, not NaN (class never predicted / never present)", () => {
    const scores = perClassScores(confusionMatrix([0, 0, 1], [0, 0, 0], 3));
    expect(scores[0]).toEqual({ precision: 2 / 3, recall: 1, f1: 0.8, support: 2 });
    expect(scores[1]).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(scores[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(macroF1(scores)).toBeCloseTo(0.8 / 3, 12);
    expect(accuracy([], [])).toBe(0);
  });

  it("rejects class indices outside the label set and mismatched lengths", () => {
    expect(() => confusionMatrix([0, 3], [0, 0], 3)).toThrow(/out of range/);
    expect(() => accuracy([0], [0, 1])).toThrow(/length mismatch/);
  });

  it("ROC AUC matches sklearn's documented example and averages ties", () => {
    // sklearn docs: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75
    expect(rocAuc([false, false, true, true], [0.1, 0.4, 0.35, 0.8])).toBeCloseTo(0.75, 12);
    // pairs (pos,neg): (0.5,0.5)=½, (0.5,0.2)=1, (0.9,0.5)=1, (0.9,0.2)=1 → 3.5/4
    expect(rocAuc([false, true, false, true], [0.5, 0.5, 0.2, 0.9])).toBeCloseTo(0.875, 12);
    expect(rocAuc([true, false, true, false], [0.3, 0.3, 0.3, 0.3])).toBe(0.5);
    expect(rocAuc([true, true, false], [0.1, 0.2, 0.9])).toBe(0);
    expect(rocAuc([true, true], [0.1, 0.2])).toBeUndefined();
  });

  it("mean ± population std (numpy default)", () => {
    const { mean, std } = meanStd([1, 2, 3, 4]);
    expect(mean).toBe(2.5);
    expect(std).toBeCloseTo(Math.sqrt(1.25), 12);
    expect(meanStd([0.9, 0.9])).toEqual({ mean: 0.9, std: 0 });
  });

  it("argmax takes the first maximum", () => {
    expect(argmax([0.2, 0.5, 0.5])).toBe(1);
    expect(argmax(new Float32Array([0.9, 0.1]))).toBe(0);
  });

  it("evaluateClassifier fills the model.json metrics shape, with AUC for binary tasks", () => {
    const probs = [
      [0.9, 0.1],
      [0.6, 0.4],
      [0.3, 0.7],
      [0.2, 0.8],
      [0.55, 0.45],
    ];
    const m = evaluateClassifier({
      labels: ["negative", "positive"],
      yTrue: [0, 0, 1, 1, 1],
      probabilities: probs,
    });
    expect(metricsSchema.parse(m)).toEqual(m);
    expect(m.accuracy).toBeCloseTo(4 / 5, 12);
    expect(m.confusionMatrix.matrix).toEqual([
      [2, 0],
      [1, 2],
    ]);
    // positive: P 2/2, R 2/3 → F1 0.8; negative: P 2/3, R 1 → F1 0.8
    expect(m.classes.positive!.f1).toBeCloseTo(0.8, 12);
    expect(m.classes.negative!.precision).toBeCloseTo(2 / 3, 12);
    // every positive score (0.7, 0.8, 0.45) is above every negative one (0.1, 0.4) → AUC 1
    expect(m.rocAuc).toBe(1);
    expect(m.testRows).toBe(5);
    const three = evaluateClassifier({
      labels: ["a", "b", "c"],
      yTrue: [0, 1, 2],
      probabilities: [
        [1, 0, 0],
        [0, 1, 0],
        [0, 1, 0],
      ],
    });
    expect(three.rocAuc).toBeUndefined();
    expect(three.classes.c).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
  });
});

describe("histogram", () => {
  it("bins like numpy.histogram (last bin closed) and clamps outliers to end bins", () => {
    const edges = equalEdges(0, 1, 4);
    expect(edges).toEqual([0, 0.25, 0.5, 0.75, 1]);
    const h = histogram([0, 0.1, 0.25, 0.5, 0.74, 0.75, 1, 1.5, -1], edges);
    expect(h.counts).toEqual([3, 1, 2, 3]);
    expect(h.counts.reduce((a, b) => a + b)).toBe(9);
  });
});
