/* mobrt.h: the public C API of the mobconv runtime (libmobrt).
 *
 * The only public surface: Python (ctypes), JNI and Swift sit on exactly this.
 * Plain C, opaque handles, create/delete pairs, status codes plus a readable
 * last-error message. No C++ types or exceptions cross this boundary.
 *
 * Typical use:
 *   mobrt_model* model = NULL;
 *   if (mobrt_model_create_from_file("net.mob", &model) != MOBRT_OK)
 *     fprintf(stderr, "%s\n", mobrt_global_last_error());
 *   mobrt_options* opts = mobrt_options_create();
 *   mobrt_options_set_num_threads(opts, 2);
 *   mobrt_interpreter* it = NULL;
 *   mobrt_interpreter_create(model, opts, &it);   // opts may be deleted now
 *   const mobrt_tensor* in = mobrt_interpreter_input_tensor(it, 0);
 *   mobrt_interpreter_set_input(it, 0, data, mobrt_tensor_byte_size(in));
 *   mobrt_interpreter_invoke(it);
 *   const mobrt_tensor* out = mobrt_interpreter_output_tensor(it, 0);
 *   const float* y = (const float*)mobrt_tensor_data(out);   // byte_size(out) bytes
 *   mobrt_interpreter_delete(it); mobrt_options_delete(opts); mobrt_model_delete(model);
 *
 * THREAD SAFETY
 *  - A mobrt_model is immutable after creation: it may be shared by any number
 *    of interpreters on any threads. Delete it only after every interpreter
 *    created from it has been deleted.
 *  - A mobrt_interpreter must be used by one thread at a time (calls on the
 *    same interpreter must not overlap). Different interpreters may run
 *    concurrently. Each interpreter owns its own fixed thread pool.
 *  - Overlapping calls on one interpreter are refused, not undefined: a call
 *    made while another thread is inside a call on the same interpreter
 *    returns MOBRT_BUSY (functions returning a pointer or a count return NULL
 *    or 0) and changes nothing; mobrt_interpreter_last_error() on the refused
 *    thread says "interpreter is in use by another thread". The refused call
 *    may be retried; serialize calls (a mutex) to never see it. An observer
 *    callback may read its interpreter (info, output data) but not resize,
 *    set inputs, invoke or set the observer (MOBRT_BUSY). This check cannot
 *    make a deleted handle valid: delete only when no other thread will call.
 *  - mobrt_interpreter_delete waits for a call in progress on another thread
 *    to return before freeing; called from the interpreter's own observer
 *    callback, it frees the interpreter when the invoke returns.
 *  - mobrt_options is not synchronized; it is only read during
 *    mobrt_interpreter_create.
 *  - mobrt_global_last_error() is thread-local.
 *  - mobrt_interpreter_cancel is the exception to the one-thread rule: any
 *    thread may call it while another thread is inside invoke.
 *  - A mobrt_tensor of a model may be read from any thread; one of an
 *    interpreter follows its interpreter's rule (see "tensors" below).
 *  - The error reporter runs on the failing call's thread.
 *
 * ERRORS
 *  Every fallible function returns mobrt_status. On failure the handle's last
 *  error (mobrt_model_last_error / mobrt_interpreter_last_error) holds a
 *  one-line message naming the problem; for failures where no handle exists
 *  (create functions) use mobrt_global_last_error(). Strings returned are
 *  owned by the library and valid until the next call on the same handle
 *  (global: on the same thread).
 */
#ifndef MOBRT_H_
#define MOBRT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(MOBRT_BUILDING)
#    define MOBRT_API __declspec(dllexport)
#  else
#    define MOBRT_API
#  endif
#else
#  define MOBRT_API __attribute__((visibility("default")))
#endif

/* Nullability: MOBRT_NULLABLE marks a pointer that may be NULL (Swift imports it
 * as an optional), MOBRT_NONNULL one that must not be NULL (non-optional in
 * Swift). They expand to clang's _Nullable/_Nonnull and to nothing elsewhere.
 * MOBRT_NONNULL documents the contract only: the library still checks every
 * pointer argument and returns MOBRT_INVALID_ARGUMENT (or NULL/0/-1) for NULL. */
#if defined(__clang__) && !defined(MOBRT_NO_NULLABILITY)
#  define MOBRT_NULLABLE _Nullable
#  define MOBRT_NONNULL _Nonnull
/* -pedantic calls the specifiers an extension; silenced for this header only */
#  pragma clang diagnostic push
#  pragma clang diagnostic ignored "-Wnullability-extension"
#  define MOBRT_NULLABILITY_PUSHED 1
#else
#  define MOBRT_NULLABLE
#  define MOBRT_NONNULL
#endif

#define MOBRT_VERSION_MAJOR 0
#define MOBRT_VERSION_MINOR 1
#define MOBRT_VERSION_PATCH 0

/* Status of every fallible call. Values are stable: new ones are appended,
 * none is ever renumbered (bindings generate their tables from this enum:
 * scripts/gen_binding_enums.py). */
typedef enum mobrt_status {
  MOBRT_OK = 0,               /* success */
  MOBRT_INVALID_ARGUMENT = 1, /* bad argument from the caller (NULL, index, size, dtype) */
  MOBRT_INVALID_MODEL = 2,    /* the file is malformed or violates the format's rules */
  MOBRT_UNSUPPORTED = 3,      /* valid file, but something this runtime cannot run */
  MOBRT_SHAPE_ERROR = 4,      /* shapes do not fit an op's rules (e.g. after resize) */
  MOBRT_OUT_OF_MEMORY = 5,    /* an allocation failed; the handle is unchanged */
  MOBRT_IO_ERROR = 6,         /* file cannot be opened / mapped / read */
  MOBRT_NOT_READY = 7,        /* e.g. invoke before symbolic inputs are resized */
  MOBRT_INTERNAL = 8,         /* a bug: please report with the message */
  MOBRT_BUSY = 9,             /* another thread is inside a call on this interpreter */
  MOBRT_CANCELLED = 10        /* invoke stopped by mobrt_interpreter_cancel; outputs are
                                 not valid, the interpreter stays usable */
} mobrt_status;

/* Element types; values equal the .mob schema's DType. Sizes in bytes:
 * mobrt_dtype_size(). */
typedef enum mobrt_dtype {
  MOBRT_FLOAT32 = 0,  /* IEEE binary32, 4 bytes */
  MOBRT_FLOAT16 = 1,  /* IEEE binary16, 2 bytes */
  MOBRT_BFLOAT16 = 2, /* bfloat16, 2 bytes */
  MOBRT_INT8 = 3,     /* 1 byte; quantized tensors carry scale/zero point */
  MOBRT_UINT8 = 4,    /* 1 byte */
  MOBRT_INT16 = 5,    /* 2 bytes */
  MOBRT_INT32 = 6,    /* 4 bytes */
  MOBRT_INT64 = 7,    /* 8 bytes */
  MOBRT_BOOL = 8      /* 1 byte, 0 or 1 */
} mobrt_dtype;

typedef enum mobrt_backend {
  MOBRT_BACKEND_CPU = 0,   /* the CPU kernels (default) */
  MOBRT_BACKEND_OPENCL = 1 /* reserved: falls back to CPU in this version */
} mobrt_backend;

/* Instruction-set cap for kernel selection (testing, debugging). Per
 * architecture the sets form one chain and a cap admits the sets at or below it:
 *   x86:     SCALAR < AVX2 < AVX_VNNI < AVX512 < AVX512_VNNI
 *   aarch64: SCALAR < NEON < NEON_DOT < NEON_FP16
 * Sets the CPU lacks are skipped. The environment variable MOBRT_MAX_ISA (a set's
 * lower-case name: "avx2", "avx512_vnni", "neon_dot", ...) caps MOBRT_ISA_ANY. */
typedef enum mobrt_isa {
  MOBRT_ISA_SCALAR = 0, /* reference kernels only */
  MOBRT_ISA_AVX2 = 1,   /* AVX2 + FMA */
  MOBRT_ISA_AVX512 = 2, /* AVX-512 F/BW/VL */
  MOBRT_ISA_NEON = 3,   /* armv8.0 Advanced SIMD */
  MOBRT_ISA_ANY = 4,    /* default: best the CPU supports */
  MOBRT_ISA_AVX_VNNI = 5,    /* AVX2 + AVX-VNNI */
  MOBRT_ISA_AVX512_VNNI = 6, /* AVX-512 + AVX512_VNNI */
  MOBRT_ISA_NEON_DOT = 7,    /* NEON + armv8.2 dot product */
  MOBRT_ISA_NEON_FP16 = 8    /* NEON_DOT + armv8.2 fp16 arithmetic */
} mobrt_isa;

#define MOBRT_MAX_RANK 8

typedef struct mobrt_model mobrt_model;
typedef struct mobrt_options mobrt_options;
typedef struct mobrt_interpreter mobrt_interpreter;
/* One input or output tensor of a model or an interpreter (opaque, read with the
 * mobrt_tensor_* accessors). Never created or freed by the caller: it is owned
 * by the model or interpreter it came from and valid as long as that handle. */
typedef struct mobrt_tensor mobrt_tensor;

/* ---- library ------------------------------------------------------------ */

/* "0.1.0"; static string, never free. */
MOBRT_API const char* MOBRT_NONNULL mobrt_version(void);
/* Highest .mob format major version this runtime reads. */
MOBRT_API uint32_t mobrt_format_version_major(void);
/* Last error of a failed call that had no handle to report on (create
 * functions, NULL handles). Thread-local; owned by the library; "" when none. */
MOBRT_API const char* MOBRT_NONNULL mobrt_global_last_error(void);
/* Short name of a status code ("MOBRT_INVALID_MODEL"); static string;
 * "MOBRT_UNKNOWN" for a value not in the enum. */
MOBRT_API const char* MOBRT_NONNULL mobrt_status_name(mobrt_status status);
/* Bytes of one element of `dtype` (MOBRT_FLOAT32: 4, MOBRT_BOOL: 1, ...);
 * 0 for a value not in the enum. */
MOBRT_API size_t mobrt_dtype_size(mobrt_dtype dtype);
/* Short name of a dtype ("float32", "int8", ...; the names numpy uses, and
 * "bfloat16"); static string; "unknown" for a value not in the enum. */
MOBRT_API const char* MOBRT_NONNULL mobrt_dtype_name(mobrt_dtype dtype);

/* Op types this runtime knows (= the .mob schema's OpType enum size it was
 * built with), and a JSON description of one (tooling, tests): {"name",
 * "inputs": [min, max], "outputs": [min, max] (max -1: variadic), "attrs":
 * [{"name", "kind" (i f s I F S t), "presence" (required|optional|default),
 * "default"}], "kernels": [{"isa", "dtype", "name"}]}. Static strings; NULL
 * for an unknown type. */
MOBRT_API int mobrt_num_op_types(void);
MOBRT_API const char* MOBRT_NULLABLE mobrt_op_describe(int type);

/* ---- error reporter --------------------------------------------------------- */

/* Called once for every failed call (status != MOBRT_OK, including
 * MOBRT_BUSY refusals and MOBRT_CANCELLED) with the same one-line message the
 * last-error functions return. It runs on the thread that made the failing
 * call, before that call returns; `message` is valid only during the callback
 * (copy it to keep it). The reporter must not call back into the library on the
 * handle that failed. It adds to, and does not replace, the last-error strings. */
typedef void (*mobrt_error_reporter_fn)(void* MOBRT_NULLABLE user_data, mobrt_status status,
                                        const char* MOBRT_NONNULL message);

/* Installs the process-wide reporter (NULL removes it); user_data is passed
 * back unchanged and not owned. Used for failures of calls on handles whose
 * options set no reporter, and for failures with no handle. Thread-safe: may be
 * called at any time from any thread; a failure racing with the change is
 * reported to the old or the new reporter. */
MOBRT_API void mobrt_set_error_reporter(mobrt_error_reporter_fn MOBRT_NULLABLE fn,
                                        void* MOBRT_NULLABLE user_data);

/* ---- model -------------------------------------------------------------- */

/* Maps the file read-only (zero copy: weights are used in place) and
 * validates it completely. On success *out receives a new model owned by the
 * caller (free with mobrt_model_delete). On failure *out is set to NULL and
 * the message is in mobrt_global_last_error(). */
MOBRT_API mobrt_status mobrt_model_create_from_file(const char* MOBRT_NONNULL path,
                                                   mobrt_model* MOBRT_NULLABLE* MOBRT_NONNULL out);

/* Validates and uses a caller buffer. If copy is 0 and data is 64-byte
 * aligned, the buffer is used in place and must stay valid and unchanged until
 * the model is deleted (the caller keeps ownership). Otherwise (copy != 0 or
 * data not aligned) the library copies it into aligned memory it owns, and
 * the caller may free data when this returns. */
MOBRT_API mobrt_status mobrt_model_create_from_buffer(const void* MOBRT_NONNULL data, size_t size, int copy,
                                                     mobrt_model* MOBRT_NULLABLE* MOBRT_NONNULL out);

/* Frees the model. Interpreters created from it must be deleted first.
 * NULL is ignored. */
MOBRT_API void mobrt_model_delete(mobrt_model* MOBRT_NULLABLE model);

/* Message of the last failed call on this model; owned by the model. */
MOBRT_API const char* MOBRT_NONNULL mobrt_model_last_error(const mobrt_model* MOBRT_NULLABLE model);

/* Graph summary. Returned strings are owned by the model and live as long
 * as it does. */
MOBRT_API int mobrt_model_num_operators(const mobrt_model* MOBRT_NONNULL model);
MOBRT_API const char* MOBRT_NULLABLE mobrt_model_metadata(const mobrt_model* MOBRT_NONNULL model,
                                                          const char* MOBRT_NONNULL key);
                                          /* producer, converter_version,
                                             source_framework, ... ; NULL if absent */

/* Inputs and outputs as the file declares them, without creating an
 * interpreter (cheap; the model is immutable, so these are safe from any
 * thread). Counts are 0 for a NULL model. The tensors are owned by the model and
 * valid until mobrt_model_delete; their shapes are the declared ones (a symbolic
 * dim is -1, its name in mobrt_tensor_dim_symbol) and their data is NULL.
 * NULL for a NULL model or an index out of range. */
MOBRT_API int mobrt_model_num_inputs(const mobrt_model* MOBRT_NONNULL model);
MOBRT_API int mobrt_model_num_outputs(const mobrt_model* MOBRT_NONNULL model);
MOBRT_API const mobrt_tensor* MOBRT_NULLABLE mobrt_model_input_tensor(const mobrt_model* MOBRT_NONNULL model,
                                                                     int index);
MOBRT_API const mobrt_tensor* MOBRT_NULLABLE mobrt_model_output_tensor(const mobrt_model* MOBRT_NONNULL model,
                                                                      int index);

/* Signature and preprocessing the file records (written by the converter from
 * the source model; docs/cli.md "mobconv info").
 *
 * Layout of input/output `index`: "NCHW", "NHWC" or "" when the file records
 * none; NULL for a NULL model or an index out of range. Owned by the model. */
MOBRT_API const char* MOBRT_NULLABLE mobrt_model_input_layout(const mobrt_model* MOBRT_NONNULL model, int index);
MOBRT_API const char* MOBRT_NULLABLE mobrt_model_output_layout(const mobrt_model* MOBRT_NONNULL model, int index);
/* The preprocessing the app applies before feeding input `index`, per channel:
 *   model_input[c] = (raw[channel_order][c] - mean[c]) * scale[c]
 * A .mob file records at most one preprocessing, for input 0; other inputs have
 * none. mean/scale: copy min(count, capacity) values into out (out may be NULL
 * when capacity is 0) and return count (0: none recorded, e.g. mean [] and scale
 * [] mean "feed as is"); -1 for a NULL model or an index out of range.
 * channel_order: "RGB", "BGR" or "" (none recorded); NULL for a bad argument. */
MOBRT_API int mobrt_model_input_mean(const mobrt_model* MOBRT_NONNULL model, int index,
                                     float* MOBRT_NULLABLE out, int capacity);
MOBRT_API int mobrt_model_input_scale(const mobrt_model* MOBRT_NONNULL model, int index,
                                      float* MOBRT_NULLABLE out, int capacity);
MOBRT_API const char* MOBRT_NULLABLE mobrt_model_input_channel_order(const mobrt_model* MOBRT_NONNULL model,
                                                                    int index);

/* ---- tensors (of a model or an interpreter) ------------------------------ */

/* Accessors of a const mobrt_tensor*. A NULL tensor gives NULL/0/-1 as noted.
 * Thread safety: a model's tensors may be read from any thread. An
 * interpreter's tensors follow the interpreter's rule (one thread at a time):
 * while another thread is inside a call on it, the accessors that read its
 * state (rank, dim, byte_size, data) return 0/NULL and mobrt_interpreter_last_error
 * says why (MOBRT_BUSY); name, dtype and quantization never change and may be
 * read at any time. */

/* Name from the file; owned by the model. NULL only for a NULL tensor. */
MOBRT_API const char* MOBRT_NULLABLE mobrt_tensor_name(const mobrt_tensor* MOBRT_NULLABLE tensor);
/* Element type; MOBRT_FLOAT32 for a NULL tensor (check the tensor first). */
MOBRT_API mobrt_dtype mobrt_tensor_dtype(const mobrt_tensor* MOBRT_NULLABLE tensor);
/* Rank (0 for a scalar) and dim k (0 <= k < rank). An interpreter tensor has its
 * current shape: inputs as resized, outputs as inferred for the current input
 * shapes (after an invoke, the shape the invoke produced; data-dependent sizes
 * included). A dim still symbolic and unresolved is -1. rank: -1 for a NULL
 * tensor; dim: -1 for a NULL tensor or k out of range. */
MOBRT_API int mobrt_tensor_rank(const mobrt_tensor* MOBRT_NULLABLE tensor);
MOBRT_API int64_t mobrt_tensor_dim(const mobrt_tensor* MOBRT_NULLABLE tensor, int k);
/* Name of dim k's symbol ("batch") when the file declares it symbolic, else
 * NULL. Owned by the model. */
MOBRT_API const char* MOBRT_NULLABLE mobrt_tensor_dim_symbol(const mobrt_tensor* MOBRT_NULLABLE tensor, int k);
/* Bytes of the tensor's data for its current shape (element count * dtype
 * size); 0 while a dim is unresolved, or for a NULL tensor. */
MOBRT_API size_t mobrt_tensor_byte_size(const mobrt_tensor* MOBRT_NULLABLE tensor);
/* The tensor's data (byte_size bytes), owned by the interpreter. Inputs: the
 * internal input buffer (not caller memory given to
 * mobrt_interpreter_set_input_pointer), valid until the next resize. Outputs:
 * valid until the next invoke, resize or deletion, NULL before the first
 * successful invoke (and after a failed or cancelled one). NULL for model
 * tensors and while the shape is unresolved. */
MOBRT_API const void* MOBRT_NULLABLE mobrt_tensor_data(const mobrt_tensor* MOBRT_NULLABLE tensor);
/* Writable internal buffer of an interpreter INPUT tensor, to fill in place
 * before invoke (same lifetime as mobrt_tensor_data); NULL for outputs, model
 * tensors, or an unresolved shape. */
MOBRT_API void* MOBRT_NULLABLE mobrt_tensor_mutable_data(const mobrt_tensor* MOBRT_NULLABLE tensor);

/* Affine quantization: real = scale * (q - zero_point).
 * scale_count: 0 when the tensor is not quantized, 1 per-tensor, else one per
 * slice along quant_axis. quant_scale / quant_zero_point: entry k
 * (0 <= k < scale_count); 0 when k is out of range. quant_axis: the
 * per-axis dimension, -1 when per-tensor or not quantized. */
MOBRT_API int mobrt_tensor_quant_scale_count(const mobrt_tensor* MOBRT_NULLABLE tensor);
MOBRT_API float mobrt_tensor_quant_scale(const mobrt_tensor* MOBRT_NULLABLE tensor, int k);
MOBRT_API int64_t mobrt_tensor_quant_zero_point(const mobrt_tensor* MOBRT_NULLABLE tensor, int k);
MOBRT_API int mobrt_tensor_quant_axis(const mobrt_tensor* MOBRT_NULLABLE tensor);

/* ---- options ------------------------------------------------------------ */

/* New options with defaults (1 thread, CPU, no fp16, any ISA); owned by the
 * caller, free with mobrt_options_delete. NULL only when out of memory. */
MOBRT_API mobrt_options* MOBRT_NULLABLE mobrt_options_create(void);
/* NULL is ignored. */
MOBRT_API void mobrt_options_delete(mobrt_options* MOBRT_NULLABLE options);
/* threads >= 1; the interpreter creates threads-1 workers once. */
MOBRT_API mobrt_status mobrt_options_set_num_threads(mobrt_options* MOBRT_NONNULL options, int threads);
MOBRT_API mobrt_status mobrt_options_set_backend(mobrt_options* MOBRT_NONNULL options, mobrt_backend backend);
/* Allow Conv/Gemm/MatMul to compute in fp16 where the CPU has fp16 arithmetic
 * (ARMv8.2 FEAT_FP16, MOBRT_ISA_NEON_FP16; weights rounded to fp16 once, activations
 * at the kernel, fp16 accumulation: about 1e-3 relative error, values beyond 65504
 * overflow). A model whose metadata quantization.fp16_compute is "allow" (written by
 * the fp16 quantization scheme) allows it too; a max_isa cap below NEON_FP16 (or
 * MOBRT_MAX_ISA=neon_dot) keeps float32. Elsewhere it changes nothing: fp16 weights
 * are widened to float32 at load. Default 0. docs/quantization.md "fp16 compute". */
MOBRT_API mobrt_status mobrt_options_set_allow_fp16(mobrt_options* MOBRT_NONNULL options, int allow);
/* Cap the instruction sets kernels may use. The environment variable
 * MOBRT_MAX_ISA (scalar|avx2|avx512|neon) applies when this is MOBRT_ISA_ANY. */
MOBRT_API mobrt_status mobrt_options_set_max_isa(mobrt_options* MOBRT_NONNULL options, mobrt_isa isa);
/* 1 when this build has kernels for `isa` and the running CPU can execute them
 * (SCALAR and ANY: always 1), else 0. */
MOBRT_API int mobrt_isa_supported(mobrt_isa isa);
/* Record per-op timings during invoke (default off; small overhead). */
MOBRT_API mobrt_status mobrt_options_set_profiling(mobrt_options* MOBRT_NONNULL options, int enable);
/* Error reporter for interpreters created with these options (copied at
 * mobrt_interpreter_create): their failures go to fn instead of the
 * process-wide reporter. NULL (default) uses the process-wide one. Same
 * callback rules as mobrt_set_error_reporter. */
MOBRT_API mobrt_status mobrt_options_set_error_reporter(mobrt_options* MOBRT_NONNULL options,
                                                       mobrt_error_reporter_fn MOBRT_NULLABLE fn,
                                                       void* MOBRT_NULLABLE user_data);

/* ---- interpreter -------------------------------------------------------- */

/* Creates an interpreter over `model` (not copied: it must outlive the
 * interpreter). options may be NULL (defaults) and is not retained. Selects
 * kernels, pre-packs weights, infers shapes for the declared input shapes
 * (symbolic dims must be resolved with mobrt_interpreter_resize_input before
 * invoke), and plans the arena. On success *out is owned by the caller (free
 * with mobrt_interpreter_delete); on failure *out is NULL and the message is
 * in mobrt_global_last_error(). */
MOBRT_API mobrt_status mobrt_interpreter_create(const mobrt_model* MOBRT_NONNULL model,
                                               const mobrt_options* MOBRT_NULLABLE options,
                                               mobrt_interpreter* MOBRT_NULLABLE* MOBRT_NONNULL out);
/* Stops the pool's threads and frees everything the interpreter owns
 * (arena, outputs, packed weights, its tensors). NULL is ignored. */
MOBRT_API void mobrt_interpreter_delete(mobrt_interpreter* MOBRT_NULLABLE interpreter);
/* Message of the last failed call on this interpreter (on this thread, for a
 * MOBRT_BUSY refusal); owned by the library, "" when none. */
MOBRT_API const char* MOBRT_NONNULL mobrt_interpreter_last_error(const mobrt_interpreter* MOBRT_NULLABLE interpreter);

MOBRT_API int mobrt_interpreter_num_inputs(const mobrt_interpreter* MOBRT_NONNULL interpreter);
MOBRT_API int mobrt_interpreter_num_outputs(const mobrt_interpreter* MOBRT_NONNULL interpreter);
/* Input/output `index` as a tensor (read with mobrt_tensor_*); owned by the
 * interpreter, the same pointer for its whole life (its shape and data follow
 * resize and invoke), freed by mobrt_interpreter_delete. NULL for a NULL
 * interpreter or an index out of range. */
MOBRT_API const mobrt_tensor* MOBRT_NULLABLE mobrt_interpreter_input_tensor(
    const mobrt_interpreter* MOBRT_NONNULL interpreter, int index);
MOBRT_API const mobrt_tensor* MOBRT_NULLABLE mobrt_interpreter_output_tensor(
    const mobrt_interpreter* MOBRT_NONNULL interpreter, int index);
/* Tensor description. Name strings are owned by the model. dims receives
 * `rank` values (at most MOBRT_MAX_RANK); a dim is -1 while it is symbolic
 * and unresolved. Outputs report the current inferred shape. dtype, rank and
 * dims may each be NULL (not written). Prefer the mobrt_tensor accessors. */
MOBRT_API const char* MOBRT_NULLABLE mobrt_interpreter_input_name(const mobrt_interpreter* MOBRT_NONNULL interpreter,
                                                                 int index);
MOBRT_API const char* MOBRT_NULLABLE mobrt_interpreter_output_name(const mobrt_interpreter* MOBRT_NONNULL interpreter,
                                                                  int index);
MOBRT_API mobrt_status mobrt_interpreter_input_info(const mobrt_interpreter* MOBRT_NONNULL interpreter, int index,
                                                   mobrt_dtype* MOBRT_NULLABLE dtype, int* MOBRT_NULLABLE rank,
                                                   int64_t* MOBRT_NULLABLE dims);
MOBRT_API mobrt_status mobrt_interpreter_output_info(const mobrt_interpreter* MOBRT_NONNULL interpreter, int index,
                                                    mobrt_dtype* MOBRT_NULLABLE dtype, int* MOBRT_NULLABLE rank,
                                                    int64_t* MOBRT_NULLABLE dims);
/* Index of the input/output named `name`, or -1. */
MOBRT_API int mobrt_interpreter_input_index(const mobrt_interpreter* MOBRT_NONNULL interpreter,
                                            const char* MOBRT_NONNULL name);
MOBRT_API int mobrt_interpreter_output_index(const mobrt_interpreter* MOBRT_NONNULL interpreter,
                                             const char* MOBRT_NONNULL name);
/* Symbolic dims (e.g. "batch") bound by this call, for informational use:
 * the name of symbol `dim` of input `index`, or NULL if that dim is fixed. */
MOBRT_API const char* MOBRT_NULLABLE mobrt_interpreter_input_dim_symbol(
    const mobrt_interpreter* MOBRT_NONNULL interpreter, int index, int dim);

/* Sets input `index` to `rank` dims (copied). Fixed dims of the file must
 * match; symbolic dims take any size >= 0. Re-runs shape inference and the
 * arena plan; output pointers obtained before become invalid. */
MOBRT_API mobrt_status mobrt_interpreter_resize_input(mobrt_interpreter* MOBRT_NONNULL interpreter, int index,
                                                     int rank, const int64_t* MOBRT_NULLABLE dims);

/* Copies `size` bytes (must equal the input's byte size) into the input.
 * Input values survive invoke (also a failed or cancelled one): invoking again
 * without setting them again computes on the same values. A resize discards them. */
MOBRT_API mobrt_status mobrt_interpreter_set_input(mobrt_interpreter* MOBRT_NONNULL interpreter, int index,
                                                  const void* MOBRT_NONNULL data, size_t size);
/* Makes the interpreter read input `index` directly from caller memory (no
 * copy) on following invokes. The caller keeps ownership; the memory must
 * hold the input's byte size, be aligned to the element size and stay valid
 * until another set_input/set_input_pointer/resize on this input or the
 * interpreter's deletion. NULL reverts to the internal buffer. */
MOBRT_API mobrt_status mobrt_interpreter_set_input_pointer(mobrt_interpreter* MOBRT_NONNULL interpreter,
                                                          int index, const void* MOBRT_NULLABLE data,
                                                          size_t size);
/* Pointer to the internal input buffer (to fill in place); owned by the
 * interpreter, valid until the next resize. */
MOBRT_API void* MOBRT_NULLABLE mobrt_interpreter_input_data(mobrt_interpreter* MOBRT_NONNULL interpreter,
                                                           int index);

/* Runs the graph. Returns MOBRT_CANCELLED when mobrt_interpreter_cancel
 * stopped it (outputs are then not valid; the interpreter stays usable and the
 * next invoke runs normally). */
MOBRT_API mobrt_status mobrt_interpreter_invoke(mobrt_interpreter* MOBRT_NONNULL interpreter);

/* Asks the invoke running on `interpreter` to stop. Callable from ANY thread
 * at any time while the interpreter exists (it is the one call exempt from the
 * one-thread-at-a-time rule, and it never returns MOBRT_BUSY); it does not wait.
 * The invoke stops before its next operator (an operator already running
 * finishes) and returns MOBRT_CANCELLED. A cancel that arrives when no invoke
 * is running is ignored: every invoke starts uncancelled. Returns
 * MOBRT_INVALID_ARGUMENT for NULL, else MOBRT_OK. Do not call it concurrently
 * with mobrt_interpreter_delete of the same interpreter. */
MOBRT_API mobrt_status mobrt_interpreter_cancel(mobrt_interpreter* MOBRT_NONNULL interpreter);

/* Output data, owned by the interpreter, valid until the next invoke,
 * resize or deletion. NULL before the first successful invoke. */
MOBRT_API const void* MOBRT_NULLABLE mobrt_interpreter_output_data(const mobrt_interpreter* MOBRT_NONNULL interpreter,
                                                                  int index);
MOBRT_API size_t mobrt_interpreter_output_size(const mobrt_interpreter* MOBRT_NONNULL interpreter, int index);

/* Bytes of the activation arena of the current plan, and the sum of all
 * planned activation sizes (what a plan without reuse would need). */
MOBRT_API size_t mobrt_interpreter_arena_bytes(const mobrt_interpreter* MOBRT_NONNULL interpreter);
MOBRT_API size_t mobrt_interpreter_activation_bytes(const mobrt_interpreter* MOBRT_NONNULL interpreter);

/* ---- profiling ------------------------------------------------------------ */

/* Number of entries (= operators executed at invoke) of the last invoke with
 * profiling enabled; 0 otherwise. */
MOBRT_API int mobrt_interpreter_profile_count(const mobrt_interpreter* MOBRT_NONNULL interpreter);
/* Entry `index` (0 <= index < profile_count) of the last profiled invoke:
 * the operator's name (owned by the model), its type ("Conv", static), the
 * kernel that ran it ("conv_f32_reference", static) and its time in
 * microseconds. NULL / -1.0 for a bad argument. These replace the
 * mobrt_profile_entry struct (which cannot grow). */
MOBRT_API const char* MOBRT_NULLABLE mobrt_interpreter_profile_op_name(
    const mobrt_interpreter* MOBRT_NONNULL interpreter, int index);
MOBRT_API const char* MOBRT_NULLABLE mobrt_interpreter_profile_op_type(
    const mobrt_interpreter* MOBRT_NONNULL interpreter, int index);
MOBRT_API const char* MOBRT_NULLABLE mobrt_interpreter_profile_kernel(
    const mobrt_interpreter* MOBRT_NONNULL interpreter, int index);
MOBRT_API double mobrt_interpreter_profile_microseconds(const mobrt_interpreter* MOBRT_NONNULL interpreter,
                                                       int index);

/* DEPRECATED (frozen layout, kept for existing callers): use the
 * mobrt_interpreter_profile_op_name/_op_type/_kernel/_microseconds accessors. */
typedef struct mobrt_profile_entry {
  const char* MOBRT_NULLABLE op_name;    /* owned by the model */
  const char* MOBRT_NULLABLE op_type;    /* static string, e.g. "Conv" */
  const char* MOBRT_NULLABLE kernel;     /* static string, e.g. "conv_f32_reference" */
  double microseconds;                   /* time of the op in the last invoke */
} mobrt_profile_entry;

/* DEPRECATED: copies entry `index` into *entry (see the accessors above). */
MOBRT_API mobrt_status mobrt_interpreter_profile_entry(const mobrt_interpreter* MOBRT_NONNULL interpreter,
                                                      int index, mobrt_profile_entry* MOBRT_NONNULL entry);

/* ---- observer (calibration, debugging) ---------------------------------- */

/* Called after each operator with its index (in file order), its name and type
 * (owned by the model / static), its outputs as tensors and `user_data`.
 * outputs[k] is valid only during the callback: read it with the mobrt_tensor_*
 * accessors (mobrt_tensor_data gives the values; quantization is reported for
 * quantized intermediates). Return 0 to continue, non-zero to abort the invoke
 * (invoke then returns MOBRT_INVALID_ARGUMENT naming the op). While an observer
 * is set, every intermediate tensor is kept intact until its callback (the
 * interpreter still reuses memory afterwards). The callback runs on the
 * invoking thread; it may read the interpreter but not resize, set inputs,
 * invoke or change the observer (MOBRT_BUSY). */
typedef int (*mobrt_tensor_observer_fn)(void* MOBRT_NULLABLE user_data, int op_index,
                                        const char* MOBRT_NONNULL op_name, const char* MOBRT_NONNULL op_type,
                                        int num_outputs,
                                        const mobrt_tensor* MOBRT_NONNULL const* MOBRT_NONNULL outputs);
/* Sets the observer (NULL removes it); replaces one set by either function. */
MOBRT_API mobrt_status mobrt_interpreter_set_tensor_observer(mobrt_interpreter* MOBRT_NONNULL interpreter,
                                                            mobrt_tensor_observer_fn MOBRT_NULLABLE fn,
                                                            void* MOBRT_NULLABLE user_data);

/* DEPRECATED (frozen layout, kept for existing callers): the observer below
 * passes this struct, which cannot grow; use mobrt_interpreter_set_tensor_observer. */
typedef struct mobrt_tensor_info {
  const char* MOBRT_NULLABLE name;       /* owned by the model */
  mobrt_dtype dtype;
  int rank;
  int64_t dims[MOBRT_MAX_RANK];
  const void* MOBRT_NULLABLE data;       /* valid only during the callback */
  size_t size;                           /* bytes */
} mobrt_tensor_info;

/* DEPRECATED observer: as mobrt_tensor_observer_fn, outputs as
 * mobrt_tensor_info structs. */
typedef int (*mobrt_observer_fn)(void* MOBRT_NULLABLE user_data, int op_index, const char* MOBRT_NONNULL op_name,
                                 const char* MOBRT_NONNULL op_type, int num_outputs,
                                 const mobrt_tensor_info* MOBRT_NONNULL outputs);
MOBRT_API mobrt_status mobrt_interpreter_set_observer(mobrt_interpreter* MOBRT_NONNULL interpreter,
                                                     mobrt_observer_fn MOBRT_NULLABLE fn,
                                                     void* MOBRT_NULLABLE user_data);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#ifdef MOBRT_NULLABILITY_PUSHED
#  pragma clang diagnostic pop
#  undef MOBRT_NULLABILITY_PUSHED
#endif

#endif /* MOBRT_H_ */
