// train/metrics.h: the evaluation metrics of METHOD 6 and the image score of METHOD 5.4.
//
// Key decision: every metric is computed exactly, from one sort of the scores and a sweep over
// the distinct score values (each distinct value is one threshold, so ties never split). AUROC
// and AP follow scikit-learn 1.2 (roc_auc_score, average_precision_score) and AU-PRO follows the
// MVTec AD evaluation code (pro_curve_util.compute_pro + generic_util.trapezoid), which is the
// same exact sweep; there is no threshold grid and so no grid error. Counts are integers until
// the final divisions, so the results do not depend on the order of equal scores.
//
// Conventions: a score >= threshold is predicted anomalous; labels and mask pixels are 0
// (normal) or nonzero/1 (anomalous). Maps and masks are H x W, row-major, one per image.
// Errors: size mismatches throw ShapeError; NaN scores, labels other than 0/1 and inputs with
// only one class (where the metric is undefined) throw ConfigError. No metric returns NaN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace caf {

// Area under the ROC curve, trapezoidal (scikit-learn roc_auc_score). O(n) (a radix sort).
double auroc(const std::vector<float>& scores, const std::vector<uint8_t>& labels);

// Σ (R_n − R_{n−1}) P_n over the distinct scores, descending (average_precision_score).
double average_precision(const std::vector<float>& scores, const std::vector<uint8_t>& labels);

struct Curve {
  std::vector<double> x, y;
};

// (FPR, TPR) from (0, 0) to (1, 1), one point per distinct score (scikit-learn roc_curve without
// drop_intermediate), then thinned for plotting to at most max_points (>= 2): a point is kept
// when the path since the last kept point is at least 1/(max_points − 2) of the whole length;
// the first and last points are always kept.
Curve roc_curve(const std::vector<float>& scores, const std::vector<uint8_t>& labels,
                size_t max_points = 2000);

// (recall, precision), recall increasing: (0, 1) first (scikit-learn's appended point), then one
// point per distinct score, descending; thinned as roc_curve.
Curve pr_curve(const std::vector<float>& scores, const std::vector<uint8_t>& labels,
               size_t max_points = 2000);

// MVTec AD's AU-PRO, normalised: the ground-truth regions are the connected components of every
// mask (8-connectivity, scipy.ndimage.label with np.ones((3, 3))). At each distinct score t,
// PRO(t) = mean over all regions of all images of the fraction of the region with score >= t,
// FPR(t) = fraction of all normal pixels with score >= t. The curve starts at (0, 0); the area
// under PRO over FPR in [0, fpr_limit] (trapezoids, the point at fpr_limit interpolated
// linearly) is divided by fpr_limit. Images without a defect pixel contribute only normal
// pixels. fpr_limit in (0, 1].
double au_pro(const std::vector<const float*>& maps, const std::vector<const uint8_t*>& masks,
              int height, int width, double fpr_limit = 0.3);

// METHOD 5.4: the maximum of the k x k mean of the map (stride 1, zero padding k/2, the padding
// counted: every window sum is divided by k*k), as DRAEM's avg_pool2d. k odd, >= 1. O(HW) with a
// summed-area table in double.
float image_score(const float* map, int height, int width, int k = 21);

}  // namespace caf
