// detection.cpp: PriorBox and DetectionOutput (Caffe SSD). Registered so
// the table lists every op, but not implemented yet: the shape function
// reports MOBRT_UNSUPPORTED with the op name, so a model using them fails at
// interpreter creation with a clear message rather than at run time.
#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

Status infer_unsupported(KernelContext& ctx) {
  return Status::Error(StatusCode::kUnsupported, ctx.error("not implemented in the C++ runtime yet").message);
}
Status run_unsupported(KernelContext& ctx) { return infer_unsupported(ctx); }

}  // namespace

void register_detection(KernelRegistry& r) {
  reg(r, fb::OpType_PriorBox, DType::Any, "prior_box_unimplemented", infer_unsupported, run_unsupported);
  reg(r, fb::OpType_DetectionOutput, DType::Any, "detection_output_unimplemented", infer_unsupported, run_unsupported);
}

}  // namespace ref
}  // namespace mobrt
