// train/plot.h: small raster figures for evaluation reports: ROC / PR curves and anomaly-map
// overlays, as caf::Image (write them with image_write_png).
//
// Key decision: no plotting library and no font files. A built-in 5x7 bitmap font (upper case,
// digits, ". , : ( ) - / % = + _"; lower case drawn as upper case) and plain 2-px polylines
// are enough for a curve with a legend, and keep the tools self-contained.
#pragma once

#include <string>
#include <vector>

#include "augment/image_io.h"
#include "train/metrics.h"

namespace caf {

// An RGB figure width x height: the axes [0,1] x [0,1] with a grid every 0.2 and tick labels,
// each curve a 2-px polyline in its own colour (points clamped to the axes), the title on top,
// the axis labels, and a legend of labels (one per curve) below the axes. A ROC diagonal is
// just another curve. Throws ShapeError when labels and curves differ in number or a curve's x
// and y differ in length, ConfigError when the figure is too small for its legend.
Image plot_curves(const std::vector<Curve>& curves, const std::vector<std::string>& labels,
                  const std::string& title, const std::string& xlabel, const std::string& ylabel,
                  int width = 480, int height = 400);

// The RGB image (planar CHW bytes, 3 x height x width) blended half and half with the jet colour
// of the map normalised by lo..hi (clamped); with a mask (height x width, nonzero = anomalous),
// its outline (mask pixels with a 4-neighbour in the image but not in the mask) is drawn in
// white. NaN map values are drawn as lo. Returns HWC. Throws ConfigError unless lo < hi.
Image heatmap_overlay(const uint8_t* rgb_chw, const float* map, int height, int width, float lo,
                      float hi, const uint8_t* mask = nullptr);

}  // namespace caf
