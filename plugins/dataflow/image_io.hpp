#pragma once
// Decoding JPEG (libjpeg-turbo) and PNG (libpng) files to 8-bit RGB, and resampling
// a box of an image to a fixed size with PIL's antialiased bilinear filter (what
// torchvision's transforms use on PIL images). Errors throw runner::SampleError whose
// message starts with the file's path.
#include <cstdint>
#include <string>
#include <vector>

namespace runner::plugins::image {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  ///< height x width x 3, row-major
};

/// Reads a whole file.
std::vector<uint8_t> read_file(const std::string& path);

/// Width and height from the file's header, without decoding the pixels.
void probe(const std::vector<uint8_t>& bytes, const std::string& path, int* width, int* height);

/// Decodes to RGB. A JPEG is decoded at the smallest of libjpeg-turbo's DCT scales
/// (1/8 .. 1) whose size is still >= (min_width, min_height) (0: full size); the result's
/// size says which scale was used. PNG is always decoded at full size.
Image decode(const std::vector<uint8_t>& bytes, const std::string& path, int min_width = 0, int min_height = 0);

/// The box [x0, x1) x [y0, y1) of `src` (fractional coordinates, in src's pixels)
/// resampled to out_w x out_h, written as normalised float CHW:
/// out[c][y][x] = (value / 255 - mean[c]) / std[c], mirrored left-right when `flip`.
void resample_box(const Image& src, double x0, double y0, double x1, double y1, int out_w, int out_h,
                  const float mean[3], const float std[3], bool flip, float* out);

}  // namespace runner::plugins::image
