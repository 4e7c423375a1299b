# Bring in the pinned llama.cpp tree as static, position-independent libraries.

if (NOT EXISTS "${OHAI_LLAMA_CPP_DIR}/include/llama.h" AND OHAI_FETCH_LLAMA_CPP)
    find_package(Python3 COMPONENTS Interpreter REQUIRED)
    message(STATUS "ohai: fetching the pinned llama.cpp tree into ${OHAI_LLAMA_CPP_DIR}")
    execute_process(
        COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/scripts/fetch_llama_cpp.py --dest ${OHAI_LLAMA_CPP_DIR}
        RESULT_VARIABLE _ohai_fetch_rc)
endif()
if (NOT EXISTS "${OHAI_LLAMA_CPP_DIR}/include/llama.h")
    message(FATAL_ERROR "ohai: no llama.cpp tree at ${OHAI_LLAMA_CPP_DIR}; run `python scripts/fetch_llama_cpp.py` "
                        "or pass -DOHAI_LLAMA_CPP_DIR=<llama.cpp tree of build 0c1e570>")
endif()

set(BUILD_SHARED_LIBS   OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_COMMON  OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TESTS   OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TOOLS   OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_SERVER  OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_APP     OFF CACHE BOOL "" FORCE)
set(LLAMA_CURL          OFF CACHE BOOL "" FORCE)
set(LLAMA_OPENSSL       OFF CACHE BOOL "" FORCE)
set(LLAMA_ALL_WARNINGS  OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_NUMBER 0 CACHE STRING "" FORCE)
set(LLAMA_BUILD_COMMIT "0c1e570" CACHE STRING "" FORCE)

# llama/ggml are compiled position-independent to live inside _core.so. With default
# visibility every call between their functions could be interposed, which stops GCC from
# inlining and sends calls through the PLT: measurably slower than llama.cpp's own static
# tools. Hidden visibility gives PIC code the same freedom as a plain static build.
set(CMAKE_C_VISIBILITY_PRESET hidden)
set(CMAKE_CXX_VISIBILITY_PRESET hidden)
set(CMAKE_VISIBILITY_INLINES_HIDDEN ON)

include(${CMAKE_CURRENT_LIST_DIR}/cpu_target.cmake)
add_subdirectory(${OHAI_LLAMA_CPP_DIR} ${CMAKE_BINARY_DIR}/llama.cpp EXCLUDE_FROM_ALL)
ohai_finish_cpu_target()
ohai_cross_finish_llama_cpp()   # cmake/cross.cmake: what OpenHarmony's musl lacks
