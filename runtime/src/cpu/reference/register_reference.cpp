// register_reference.cpp: the scalar reference kernel set (Isa::Scalar),
// one registration function per op family file.
#include "cpu/reference/quant_ops.h"
#include "cpu/reference/ref.h"

namespace mobrt {

void register_reference_kernels(KernelRegistry& r) {
  ref::register_elementwise(r);
  ref::register_activations(r);
  ref::register_conv(r);
  ref::register_linalg(r);
  ref::register_norm(r);
  ref::register_pool(r);
  ref::register_softmax(r);
  ref::register_shape_ops(r);
  ref::register_tensor_ops(r);
  ref::register_reduce(r);
  ref::register_detection(r);
  ref::register_scatter(r);
  ref::register_matrix(r);
  ref::register_shrink(r);
  ref::register_einsum(r);
  ref::register_grid_sample(r);
  ref::register_nms(r);
  ref::register_quantize_linear(r);
  ref::register_quant(r);  // last: wraps the shape functions registered above
}

}  // namespace mobrt
