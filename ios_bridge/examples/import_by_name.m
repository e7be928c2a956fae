/* import_by_name.m: Objective-C imports the module by its name, the way Swift's
 * `import Mobrt` finds it (<search dir>/Mobrt/module.modulemap); compiled with
 * clang -fmodules and run by tests/test_ios_bridge.py (no Foundation needed).
 *
 *   import_by_name model.mob
 */
@import Mobrt;

#include <stdio.h>

int main(int argc, char** argv) {
  char err[256];
  mobrt_bridge_session* session = NULL;
  if (argc < 2) {
    fprintf(stderr, "usage: %s model.mob\n", argv[0]);
    return 2;
  }
  if (mobrt_bridge_session_create(argv[1], 1, &session, err, sizeof err) != MOBRT_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  const mobrt_model* model = mobrt_bridge_session_model(session);
  printf("mobrt %s: %d input(s), %d output(s)\n", mobrt_bridge_version(), mobrt_model_num_inputs(model),
         mobrt_model_num_outputs(model));
  mobrt_bridge_session_delete(session);
  return 0;
}
