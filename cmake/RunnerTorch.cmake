# runner_torch: LibTorch as runner links it. With CUDA (RUNNER_CUDA and a CUDA LibTorch):
# everything TORCH_LIBRARIES names (libtorch_cuda kept with --no-as-needed, so its kernels
# register). Without: libtorch_cpu and libc10 only. Either way no target links the libcuda.so
# stub: the driver is loaded lazily by LibTorch, so runner starts on machines without one.
#
# Every target links with --as-needed, so libraries TORCH_LIBRARIES names but runner does not
# call (cudart, nvrtc, c10_cuda) are not NEEDED: they come in through libtorch_cuda's own
# RUNPATH, which finds the nvidia-* wheels, instead of through ours.
set(RUNNER_WITH_CUDA OFF)
if(RUNNER_CUDA AND TARGET torch_cuda)
  set(RUNNER_WITH_CUDA ON)
endif()
add_library(runner_torch INTERFACE)
if(RUNNER_WITH_CUDA)
  target_link_libraries(runner_torch INTERFACE ${TORCH_LIBRARIES})
else()
  target_link_libraries(runner_torch INTERFACE torch_cpu c10)
  target_include_directories(runner_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
endif()
# LibTorch's own fmt (torch/include/fmt, 12.x) is used header-only by torch translation units;
# Debian's fmt 9 serves spdlog in logging/log.cpp, which never sees torch's headers.
target_compile_definitions(runner_torch INTERFACE FMT_HEADER_ONLY=1)
target_link_options(runner_torch INTERFACE "LINKER:--as-needed")
# libtorch.so exports pieces of GCC 13's libstdc++ (the wheel is built with gcc-toolset's
# libstdc++_nonshared.a), and some of them crash when called from our code: its
# std::filesystem::remove_all jumps to a null pointer. Symbols bind to the first library in
# load order that defines them, and g++ puts libstdc++ last, so every binary names it first:
# Debian's libstdc++ then serves the C++ library, as it does when Python imports torch.
# (tests/integration/platform.sh checks the order; the unit tests call remove_all.)
target_link_options(runner_torch INTERFACE "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
install(TARGETS runner_torch EXPORT RunnerTargets)
# Installed binaries carry an RPATH to LibTorch's folder (torch/lib in the venv), so they start
# from any folder without LD_LIBRARY_PATH; libtorch's own RPATH finds the nvidia-* wheels.
get_filename_component(RUNNER_TORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)
if(RUNNER_WITH_CUDA)
  message(STATUS "runner: LibTorch ${Torch_VERSION} with CUDA ${CUDA_VERSION} (RUNNER_CUDA=ON)")
elseif(TARGET torch_cuda)
  message(STATUS "runner: LibTorch ${Torch_VERSION}, its CUDA parts left out (RUNNER_CUDA=OFF)")
else()
  message(STATUS "runner: LibTorch ${Torch_VERSION} without CUDA")
endif()
