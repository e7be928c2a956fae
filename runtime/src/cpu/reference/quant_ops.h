// quant_ops.h: the quantized (int8/uint8) forms of the reference ops
// (quant_ops.cpp), registered after every float kernel set of
// register_reference.cpp because they wrap the shape functions registered before.
#pragma once

#include "core/kernel.h"

namespace mobrt {
namespace ref {

void register_quant(KernelRegistry& r);

}  // namespace ref
}  // namespace mobrt
