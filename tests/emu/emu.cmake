# tests/emu/emu.cmake: caf_emu_translate(OUT_VAR DEST src...) rewrites each CUDA source of caf's
# (paths relative to the repository root) for the CPU emulator into DEST/<src> (.cu files as
# DEST/<src>.cpp, compiled as C++ with tests/emu/cuda_emu.h included first; .cuh headers as they
# are, for the translated files to include). Used by tests/CMakeLists.txt (the kernel tests) and by
# the top-level CMakeLists.txt (CAF_EMU=ON: the whole CUDA backend emulated).
find_program(CAF_PERL perl)

function(caf_emu_translate out_var dest)
  if(NOT CAF_PERL)
    message(FATAL_ERROR "the CUDA emulator needs perl (tests/emu/translate.pl)")
  endif()
  set(sources "")
  foreach(src ${ARGN})
    set(out ${dest}/${src})
    if(src MATCHES "\\.cu$")
      set(out ${out}.cpp)
    endif()
    get_filename_component(dir ${out} DIRECTORY)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
      COMMAND ${CAF_PERL} ${CMAKE_SOURCE_DIR}/tests/emu/translate.pl ${CMAKE_SOURCE_DIR}/${src} ${out}
      DEPENDS ${CMAKE_SOURCE_DIR}/${src} ${CMAKE_SOURCE_DIR}/tests/emu/translate.pl
      COMMENT "emulator: ${src}")
    if(src MATCHES "\\.cu$")
      # As nvcc -fmad=false: no contraction, so emulated per-element math rounds as the GPU's does.
      set_source_files_properties(${out} PROPERTIES LANGUAGE CXX
        COMPILE_OPTIONS "-include;${CMAKE_SOURCE_DIR}/tests/emu/cuda_emu.h;-ffp-contract=off;-Wno-sign-compare;-Wno-unused-parameter")
    else()
      set_source_files_properties(${out} PROPERTIES HEADER_FILE_ONLY ON)
    endif()
    list(APPEND sources ${out})
  endforeach()
  set(${out_var} ${sources} PARENT_SCOPE)
endfunction()

# The fiber switch (emu_runtime.cpp) moves between stacks with a plain `ret`, which a shadow stack
# (Intel CET, on by default in some distributions' compilers) would reject: built without CET
# marking, the program is never run with shadow stacks.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set_source_files_properties(${CMAKE_SOURCE_DIR}/tests/emu/emu_runtime.cpp PROPERTIES COMPILE_OPTIONS -fcf-protection=none)
endif()
