// mobrt_fuzz: bounded, seeded mutation fuzzing of the loader + interpreter.
//   mobrt_fuzz seed.mob SECONDS [RNG_SEED]
// Each iteration mutates the seed file (truncation, bit flips, random bytes,
// hostile 32-bit values at random offsets, splices), then runs it through
// create_from_buffer -> interpreter_create -> set zero inputs -> invoke.
// Any crash or sanitizer report fails the test (build with
// -fsanitize=address,undefined). Prints the iteration count and how many
// mutants loaded / ran.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "mobrt.h"

static void run_one(const std::vector<uint8_t>& data, int* loaded, int* ran) {
  mobrt_model* model = nullptr;
  if (mobrt_model_create_from_buffer(data.data(), data.size(), 1, &model) != MOBRT_OK) return;
  ++*loaded;
  mobrt_options* opts = mobrt_options_create();
  mobrt_options_set_num_threads(opts, 2);
  mobrt_interpreter* it = nullptr;
  if (mobrt_interpreter_create(model, opts, &it) == MOBRT_OK) {
    bool ok = true;
    for (int i = 0; i < mobrt_interpreter_num_inputs(it); ++i) {
      mobrt_dtype dt;
      int rank;
      int64_t dims[MOBRT_MAX_RANK];
      mobrt_interpreter_input_info(it, i, &dt, &rank, dims);
      bool fixed = true;
      for (int d = 0; d < rank; ++d) fixed = fixed && dims[d] >= 0;
      if (!fixed) {
        for (int d = 0; d < rank; ++d) if (dims[d] < 0) dims[d] = 2;
        if (mobrt_interpreter_resize_input(it, i, rank, dims) != MOBRT_OK) { ok = false; break; }
      }
      void* p = mobrt_interpreter_input_data(it, i);
      if (!p) { ok = false; break; }
      // inputs: whatever the arena holds is fine (never uninitialized reads of
      // our own structures); fill with a small pattern for determinism.
      size_t n = 0;
      {
        size_t es = (dt == MOBRT_INT64) ? 8 : (dt == MOBRT_FLOAT32 || dt == MOBRT_INT32) ? 4 :
                    (dt == MOBRT_FLOAT16 || dt == MOBRT_BFLOAT16 || dt == MOBRT_INT16) ? 2 : 1;
        n = es;
        for (int d = 0; d < rank; ++d) n *= static_cast<size_t>(dims[d]);
      }
      std::memset(p, 0, n);
    }
    if (ok && mobrt_interpreter_invoke(it) == MOBRT_OK) {
      ++*ran;
      for (int o = 0; o < mobrt_interpreter_num_outputs(it); ++o) {
        const uint8_t* out = static_cast<const uint8_t*>(mobrt_interpreter_output_data(it, o));
        size_t n = mobrt_interpreter_output_size(it, o);
        volatile uint8_t sink = 0;
        for (size_t k = 0; k < n; k += 61) sink ^= out[k];
        (void)sink;
      }
    }
    mobrt_interpreter_delete(it);
  }
  mobrt_options_delete(opts);
  mobrt_model_delete(model);
}

int main(int argc, char** argv) {
  if (argc < 3) { std::fprintf(stderr, "usage: %s seed.mob SECONDS [SEED]\n", argv[0]); return 2; }
  FILE* f = std::fopen(argv[1], "rb");
  if (!f) { std::perror(argv[1]); return 2; }
  std::vector<uint8_t> seed;
  int c;
  while ((c = std::fgetc(f)) != EOF) seed.push_back(static_cast<uint8_t>(c));
  std::fclose(f);
  double seconds = std::atof(argv[2]);
  std::mt19937_64 rng(argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1234);
  int loaded = 0, ran = 0;
  long iters = 0;
  // The unmutated seed must load and run.
  run_one(seed, &loaded, &ran);
  if (loaded != 1 || ran != 1) { std::fprintf(stderr, "seed model does not run: %s\n", mobrt_global_last_error()); return 3; }
  const uint32_t hostile[] = {0u, 1u, 0x7fffffffu, 0x80000000u, 0xffffffffu, 0xfffffffeu, 64u, 0x10000u, 0x7ffffff0u};
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    std::vector<uint8_t> m = seed;
    int kind = static_cast<int>(rng() % 6);
    int count = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < count && !m.empty(); ++k) {
      size_t pos = rng() % m.size();
      switch (kind) {
        case 0: m.resize(pos); break;                                 // truncation
        case 1: m[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;  // bit flip
        case 2: m[pos] = static_cast<uint8_t>(rng()); break;          // random byte
        case 3: {                                                     // hostile 32-bit value
          uint32_t v = hostile[rng() % (sizeof hostile / sizeof hostile[0])];
          pos &= ~size_t(3);
          if (pos + 4 <= m.size()) std::memcpy(&m[pos], &v, 4);
          break;
        }
        case 4: {                                                     // small value (indices, dims)
          uint32_t v = static_cast<uint32_t>(rng() % 300) - 20;
          pos &= ~size_t(3);
          if (pos + 4 <= m.size()) std::memcpy(&m[pos], &v, 4);
          break;
        }
        default: {                                                    // splice a chunk elsewhere
          size_t len = 1 + rng() % 32, src = rng() % m.size();
          for (size_t i = 0; i < len && pos + i < m.size() && src + i < m.size(); ++i) m[pos + i] = m[src + i];
        }
      }
    }
    run_one(m, &loaded, &ran);
    ++iters;
  }
  std::printf("iterations=%ld loaded=%d ran=%d\n", iters, loaded, ran);
  return 0;
}
