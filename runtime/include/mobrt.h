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
 *   mobrt_interpreter_set_input(it, 0, data, nbytes);
 *   mobrt_interpreter_invoke(it);
 *   const float* y = (const float*)mobrt_interpreter_output_data(it, 0);
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

#define MOBRT_VERSION_MAJOR 0
#define MOBRT_VERSION_MINOR 1
#define MOBRT_VERSION_PATCH 0

typedef enum mobrt_status {
  MOBRT_OK = 0,
  MOBRT_INVALID_ARGUMENT = 1, /* bad argument from the caller (NULL, index, size) */
  MOBRT_INVALID_MODEL = 2,    /* the file is malformed or violates the format's rules */
  MOBRT_UNSUPPORTED = 3,      /* valid file, but something this runtime cannot run */
  MOBRT_SHAPE_ERROR = 4,      /* shapes do not fit an op's rules (e.g. after resize) */
  MOBRT_OUT_OF_MEMORY = 5,
  MOBRT_IO_ERROR = 6,         /* file cannot be opened / mapped */
  MOBRT_NOT_READY = 7,        /* e.g. output read before a successful invoke */
  MOBRT_INTERNAL = 8,         /* a bug: please report with the message */
  MOBRT_BUSY = 9              /* another thread is inside a call on this interpreter */
} mobrt_status;

/* Element types; values equal the .mob schema's DType. */
typedef enum mobrt_dtype {
  MOBRT_FLOAT32 = 0,
  MOBRT_FLOAT16 = 1,
  MOBRT_BFLOAT16 = 2,
  MOBRT_INT8 = 3,
  MOBRT_UINT8 = 4,
  MOBRT_INT16 = 5,
  MOBRT_INT32 = 6,
  MOBRT_INT64 = 7,
  MOBRT_BOOL = 8
} mobrt_dtype;

typedef enum mobrt_backend {
  MOBRT_BACKEND_CPU = 0,
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

/* ---- library ------------------------------------------------------------ */

/* "0.1.0"; static string, never free. */
MOBRT_API const char* mobrt_version(void);
/* Highest .mob format major version this runtime reads. */
MOBRT_API uint32_t mobrt_format_version_major(void);
/* Last error of a failed call that had no handle to report on (create
 * functions, NULL handles). Thread-local; owned by the library. */
MOBRT_API const char* mobrt_global_last_error(void);
/* Short name of a status code ("MOBRT_INVALID_MODEL"); static string. */
MOBRT_API const char* mobrt_status_name(mobrt_status status);

/* Op types this runtime knows (= the .mob schema's OpType enum size it was
 * built with), and a JSON description of one (tooling, tests): {"name",
 * "inputs": [min, max], "outputs": [min, max] (max -1: variadic), "attrs":
 * [{"name", "kind" (i f s I F S t), "presence" (required|optional|default),
 * "default"}], "kernels": [{"isa", "dtype", "name"}]}. Static strings; NULL
 * for an unknown type. */
MOBRT_API int mobrt_num_op_types(void);
MOBRT_API const char* mobrt_op_describe(int type);

/* ---- model -------------------------------------------------------------- */

/* Maps the file read-only (zero copy: weights are used in place) and
 * validates it completely. On success *out receives a new model owned by the
 * caller (free with mobrt_model_delete). On failure *out is set to NULL and
 * the message is in mobrt_global_last_error(). */
MOBRT_API mobrt_status mobrt_model_create_from_file(const char* path, mobrt_model** out);

/* Validates and uses a caller buffer. If copy is 0 and data is 64-byte
 * aligned, the buffer is used in place and must stay valid and unchanged until
 * the model is deleted (the caller keeps ownership). Otherwise (copy != 0 or
 * data not aligned) the library copies it into aligned memory it owns, and
 * the caller may free data when this returns. */
MOBRT_API mobrt_status mobrt_model_create_from_buffer(const void* data, size_t size, int copy,
                                                     mobrt_model** out);

/* Frees the model. Interpreters created from it must be deleted first.
 * NULL is ignored. */
MOBRT_API void mobrt_model_delete(mobrt_model* model);

/* Message of the last failed call on this model; owned by the model. */
MOBRT_API const char* mobrt_model_last_error(const mobrt_model* model);

/* Graph summary. Returned strings are owned by the model and live as long
 * as it does. */
MOBRT_API int mobrt_model_num_operators(const mobrt_model* model);
MOBRT_API const char* mobrt_model_metadata(const mobrt_model* model, const char* key);
                                          /* producer, converter_version,
                                             source_framework, ... ; NULL if absent */

/* ---- options ------------------------------------------------------------ */

/* New options with defaults (1 thread, CPU, no fp16, any ISA); owned by the
 * caller, free with mobrt_options_delete. NULL only when out of memory. */
MOBRT_API mobrt_options* mobrt_options_create(void);
MOBRT_API void mobrt_options_delete(mobrt_options* options);
/* threads >= 1; the interpreter creates threads-1 workers once. */
MOBRT_API mobrt_status mobrt_options_set_num_threads(mobrt_options* options, int threads);
MOBRT_API mobrt_status mobrt_options_set_backend(mobrt_options* options, mobrt_backend backend);
/* Allow Conv/Gemm/MatMul to compute in fp16 where the CPU has fp16 arithmetic
 * (ARMv8.2 FEAT_FP16, MOBRT_ISA_NEON_FP16; weights rounded to fp16 once, activations
 * at the kernel, fp16 accumulation: about 1e-3 relative error, values beyond 65504
 * overflow). A model whose metadata quantization.fp16_compute is "allow" (written by
 * the fp16 quantization scheme) allows it too; a max_isa cap below NEON_FP16 (or
 * MOBRT_MAX_ISA=neon_dot) keeps float32. Elsewhere it changes nothing: fp16 weights
 * are widened to float32 at load. Default 0. docs/quantization.md "fp16 compute". */
MOBRT_API mobrt_status mobrt_options_set_allow_fp16(mobrt_options* options, int allow);
/* Cap the instruction sets kernels may use. The environment variable
 * MOBRT_MAX_ISA (scalar|avx2|avx512|neon) applies when this is MOBRT_ISA_ANY. */
MOBRT_API mobrt_status mobrt_options_set_max_isa(mobrt_options* options, mobrt_isa isa);
/* 1 when this build has kernels for `isa` and the running CPU can execute them
 * (SCALAR and ANY: always 1), else 0. */
MOBRT_API int mobrt_isa_supported(mobrt_isa isa);
/* Record per-op timings during invoke (default off; small overhead). */
MOBRT_API mobrt_status mobrt_options_set_profiling(mobrt_options* options, int enable);

/* ---- interpreter -------------------------------------------------------- */

/* Creates an interpreter over `model` (not copied: it must outlive the
 * interpreter). options may be NULL (defaults) and is not retained. Selects
 * kernels, pre-packs weights, infers shapes for the declared input shapes
 * (symbolic dims must be resolved with mobrt_interpreter_resize_input before
 * invoke), and plans the arena. On success *out is owned by the caller (free
 * with mobrt_interpreter_delete); on failure *out is NULL and the message is
 * in mobrt_global_last_error(). */
MOBRT_API mobrt_status mobrt_interpreter_create(const mobrt_model* model,
                                               const mobrt_options* options,
                                               mobrt_interpreter** out);
/* Stops the pool's threads and frees everything the interpreter owns
 * (arena, outputs, packed weights). NULL is ignored. */
MOBRT_API void mobrt_interpreter_delete(mobrt_interpreter* interpreter);
MOBRT_API const char* mobrt_interpreter_last_error(const mobrt_interpreter* interpreter);

MOBRT_API int mobrt_interpreter_num_inputs(const mobrt_interpreter* interpreter);
MOBRT_API int mobrt_interpreter_num_outputs(const mobrt_interpreter* interpreter);
/* Tensor description. Name strings are owned by the model. dims receives
 * `rank` values (at most MOBRT_MAX_RANK); a dim is -1 while it is symbolic
 * and unresolved. Outputs report the current inferred shape. */
MOBRT_API const char* mobrt_interpreter_input_name(const mobrt_interpreter* interpreter, int index);
MOBRT_API const char* mobrt_interpreter_output_name(const mobrt_interpreter* interpreter, int index);
MOBRT_API mobrt_status mobrt_interpreter_input_info(const mobrt_interpreter* interpreter, int index,
                                                   mobrt_dtype* dtype, int* rank, int64_t* dims);
MOBRT_API mobrt_status mobrt_interpreter_output_info(const mobrt_interpreter* interpreter, int index,
                                                    mobrt_dtype* dtype, int* rank, int64_t* dims);
/* Index of the input/output named `name`, or -1. */
MOBRT_API int mobrt_interpreter_input_index(const mobrt_interpreter* interpreter, const char* name);
MOBRT_API int mobrt_interpreter_output_index(const mobrt_interpreter* interpreter, const char* name);
/* Symbolic dims (e.g. "batch") bound by this call, for informational use:
 * the name of symbol `dim` of input `index`, or NULL if that dim is fixed. */
MOBRT_API const char* mobrt_interpreter_input_dim_symbol(const mobrt_interpreter* interpreter,
                                                        int index, int dim);

/* Sets input `index` to `rank` dims (copied). Fixed dims of the file must
 * match; symbolic dims take any size >= 0. Re-runs shape inference and the
 * arena plan; output pointers obtained before become invalid. */
MOBRT_API mobrt_status mobrt_interpreter_resize_input(mobrt_interpreter* interpreter, int index,
                                                     int rank, const int64_t* dims);

/* Copies `size` bytes (must equal the input's byte size) into the input. */
MOBRT_API mobrt_status mobrt_interpreter_set_input(mobrt_interpreter* interpreter, int index,
                                                  const void* data, size_t size);
/* Makes the interpreter read input `index` directly from caller memory (no
 * copy) on following invokes. The caller keeps ownership; the memory must
 * hold the input's byte size, be aligned to the element size and stay valid
 * until another set_input/set_input_pointer/resize on this input or the
 * interpreter's deletion. NULL reverts to the internal buffer. */
MOBRT_API mobrt_status mobrt_interpreter_set_input_pointer(mobrt_interpreter* interpreter,
                                                          int index, const void* data, size_t size);
/* Pointer to the internal input buffer (to fill in place); owned by the
 * interpreter, valid until the next resize. */
MOBRT_API void* mobrt_interpreter_input_data(mobrt_interpreter* interpreter, int index);

/* Runs the graph. */
MOBRT_API mobrt_status mobrt_interpreter_invoke(mobrt_interpreter* interpreter);

/* Output data, owned by the interpreter, valid until the next invoke,
 * resize or deletion. NULL before the first successful invoke. */
MOBRT_API const void* mobrt_interpreter_output_data(const mobrt_interpreter* interpreter, int index);
MOBRT_API size_t mobrt_interpreter_output_size(const mobrt_interpreter* interpreter, int index);

/* Bytes of the activation arena of the current plan, and the sum of all
 * planned activation sizes (what a plan without reuse would need). */
MOBRT_API size_t mobrt_interpreter_arena_bytes(const mobrt_interpreter* interpreter);
MOBRT_API size_t mobrt_interpreter_activation_bytes(const mobrt_interpreter* interpreter);

/* ---- profiling ------------------------------------------------------------ */

typedef struct mobrt_profile_entry {
  const char* op_name;    /* owned by the model */
  const char* op_type;    /* static string, e.g. "Conv" */
  const char* kernel;     /* static string, e.g. "conv_f32_reference" */
  double microseconds;    /* time of the op in the last invoke */
} mobrt_profile_entry;

/* Number of entries (= operators executed at invoke) of the last invoke with
 * profiling enabled; 0 otherwise. */
MOBRT_API int mobrt_interpreter_profile_count(const mobrt_interpreter* interpreter);
/* Copies entry `index` into *entry. */
MOBRT_API mobrt_status mobrt_interpreter_profile_entry(const mobrt_interpreter* interpreter,
                                                      int index, mobrt_profile_entry* entry);

/* ---- observer (calibration, debugging) ---------------------------------- */

typedef struct mobrt_tensor_info {
  const char* name;       /* owned by the model */
  mobrt_dtype dtype;
  int rank;
  int64_t dims[MOBRT_MAX_RANK];
  const void* data;       /* valid only during the callback */
  size_t size;            /* bytes */
} mobrt_tensor_info;

/* Called after each operator with its index (in file order), its output
 * tensors and `user_data`. Return 0 to continue, non-zero to abort the invoke
 * (invoke then returns MOBRT_INVALID_ARGUMENT naming the op). While an
 * observer is set, every intermediate tensor is kept intact until its
 * callback (the interpreter still reuses memory afterwards). NULL removes it. */
typedef int (*mobrt_observer_fn)(void* user_data, int op_index, const char* op_name,
                                 const char* op_type, int num_outputs,
                                 const mobrt_tensor_info* outputs);
MOBRT_API mobrt_status mobrt_interpreter_set_observer(mobrt_interpreter* interpreter,
                                                     mobrt_observer_fn fn, void* user_data);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* MOBRT_H_ */
