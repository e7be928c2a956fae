# C++ settings shared by the runtime (runtime/CMakeLists.txt) and the JNI library
# (android_jni/CMakeLists.txt, which also builds or links the runtime): C++17 without GNU
# extensions, position-independent code (the static runtime is linked into shared libraries),
# Release when no build type is given.
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "" FORCE)
endif()
