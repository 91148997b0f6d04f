# FetchLwip.cmake — where the lwIP sources come from.
#
# anysock_fetch_lwip(<out_var>) sets <out_var> to the root of an lwIP 2.1.x source tree (the folder
# holding src/Filelists.cmake):
# - ANYSOCK_LWIP_SOURCE_DIR set: that tree, used as it is (nothing is downloaded or written there);
# - otherwise Debian's source package `lwip` (suite ANYSOCK_LWIP_DEBIAN_SUITE) is downloaded at
#   configure time by fetch-lwip.sh through a private apt configuration, its files are checked against
#   the Checksums-Sha256 of the .dsc and the upstream tarball against the hash pinned below, and the
#   upstream tarball is unpacked under <build>/_deps/lwip/. A stamp makes a re-configure skip all this.
# Debian's own patches (debian/patches) touch only the sockets layer and the Hurd port, which we do not
# build, so the pristine upstream tarball is what we compile.

include_guard(GLOBAL)

set(ANYSOCK_LWIP_SOURCE_DIR "" CACHE PATH
    "An existing lwIP 2.1.x source tree to build instead of downloading Debian's source package")
set(ANYSOCK_LWIP_DEBIAN_SUITE "bookworm" CACHE STRING "Debian suite whose lwip source package is fetched")
set(ANYSOCK_LWIP_APT_SOURCE "" CACHE STRING
    "deb-src line to fetch lwip from (default: derived from the system's Debian archive entry)")

# The upstream tarball inside Debian's lwip 2.1.3+dfsg1 packages, as measured in LWIP_NOTES.md.
set(_anysock_lwip_orig_name "lwip_2.1.3+dfsg1.orig.tar.xz")
set(_anysock_lwip_orig_sha256 "0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24")
set(_anysock_lwip_fetch_script "${CMAKE_CURRENT_LIST_DIR}/fetch-lwip.sh")

# Checks every file listed under Checksums-Sha256 in <dsc> that was downloaded beside it (size and
# SHA-256), and that the upstream tarball is listed and present. Fails configure on any mismatch.
function(_anysock_lwip_verify_dsc dsc)
  get_filename_component(dir "${dsc}" DIRECTORY)
  file(STRINGS "${dsc}" lines)
  set(in_section FALSE)
  set(checked "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^Checksums-Sha256:")
      set(in_section TRUE)
    elseif(in_section AND line MATCHES "^ ([0-9a-f]+) ([0-9]+) ([^ ]+)$")
      set(expected_sha "${CMAKE_MATCH_1}")
      set(expected_size "${CMAKE_MATCH_2}")
      set(name "${CMAKE_MATCH_3}")
      if(NOT EXISTS "${dir}/${name}")
        message(FATAL_ERROR "lwIP fetch: ${name} is listed in ${dsc} but was not downloaded")
      endif()
      file(SIZE "${dir}/${name}" actual_size)
      file(SHA256 "${dir}/${name}" actual_sha)
      if(NOT actual_size EQUAL expected_size OR NOT actual_sha STREQUAL expected_sha)
        message(FATAL_ERROR "lwIP fetch: checksum mismatch for ${dir}/${name}\n"
                            "  .dsc says: sha256 ${expected_sha}, ${expected_size} bytes\n"
                            "  file has:  sha256 ${actual_sha}, ${actual_size} bytes\n"
                            "Configure again to download afresh; if it persists, the mirror is serving bad files.")
      endif()
      list(APPEND checked "${name}")
    elseif(in_section)
      set(in_section FALSE)
    endif()
  endforeach()
  if(NOT _anysock_lwip_orig_name IN_LIST checked)
    message(FATAL_ERROR "lwIP fetch: ${dsc} does not list ${_anysock_lwip_orig_name} under Checksums-Sha256 "
                        "(listed: ${checked}). anysock is written against lwIP 2.1.3; use "
                        "-DANYSOCK_LWIP_SOURCE_DIR=/path/to/lwip-2.1.3 or a suite that ships it.")
  endif()
  file(SHA256 "${dir}/${_anysock_lwip_orig_name}" orig_sha)
  if(NOT orig_sha STREQUAL _anysock_lwip_orig_sha256)
    message(FATAL_ERROR "lwIP fetch: ${_anysock_lwip_orig_name} has sha256 ${orig_sha}, expected the pinned "
                        "${_anysock_lwip_orig_sha256}")
  endif()
endfunction()

# Downloads (unless cached), verifies and unpacks lwIP under <build>/_deps/lwip; returns the tree's root.
function(_anysock_lwip_download out_var)
  set(base "${CMAKE_BINARY_DIR}/_deps/lwip")
  set(download_dir "${base}/download")
  set(unpack_dir "${base}/src")
  set(stamp "${base}/fetched.stamp")
  set(stamp_content "${_anysock_lwip_orig_name} ${_anysock_lwip_orig_sha256}")

  if(EXISTS "${stamp}")
    file(STRINGS "${stamp}" stamp_lines)  # line 1: what was verified; line 2: the unpacked root
    list(APPEND stamp_lines "" "")  # a truncated stamp reads as empty fields, i.e. not cached
    list(GET stamp_lines 0 stamp_key)
    list(GET stamp_lines 1 cached_root)
    if(stamp_key STREQUAL stamp_content AND EXISTS "${cached_root}/src/Filelists.cmake")
      message(STATUS "lwIP: using the cached download in ${cached_root}")
      set(${out_var} "${cached_root}" PARENT_SCOPE)
      return()
    endif()
  endif()

  find_program(ANYSOCK_BASH bash REQUIRED)
  file(REMOVE_RECURSE "${download_dir}" "${unpack_dir}" "${stamp}")
  message(STATUS "lwIP: fetching Debian's lwip source package (${ANYSOCK_LWIP_DEBIAN_SUITE}) into ${download_dir}")
  set(script_args "${download_dir}" "${ANYSOCK_LWIP_DEBIAN_SUITE}")
  if(ANYSOCK_LWIP_APT_SOURCE)
    list(APPEND script_args "${ANYSOCK_LWIP_APT_SOURCE}")
  endif()
  execute_process(COMMAND "${ANYSOCK_BASH}" "${_anysock_lwip_fetch_script}" ${script_args}
                  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "lwIP fetch failed (${result}):\n${output}\n"
                        "Either fix the apt access above, or pass -DANYSOCK_LWIP_SOURCE_DIR=/path/to/lwip-2.1.3 "
                        "(or -DANYSOCK_WITH_LWIP=OFF to build without the lwIP backend).")
  endif()

  file(GLOB dscs "${download_dir}/lwip_*.dsc")
  list(LENGTH dscs dsc_count)
  if(NOT dsc_count EQUAL 1)
    message(FATAL_ERROR "lwIP fetch: expected one lwip_*.dsc in ${download_dir}, found: ${dscs}\n${output}")
  endif()
  _anysock_lwip_verify_dsc("${dscs}")

  file(ARCHIVE_EXTRACT INPUT "${download_dir}/${_anysock_lwip_orig_name}" DESTINATION "${unpack_dir}")
  file(GLOB roots LIST_DIRECTORIES true "${unpack_dir}/*/src/Filelists.cmake")
  list(LENGTH roots root_count)
  if(NOT root_count EQUAL 1)
    message(FATAL_ERROR "lwIP fetch: expected one lwIP tree in ${unpack_dir}, found: ${roots}")
  endif()
  get_filename_component(root "${roots}" DIRECTORY)  # .../lwip-2.1.3/src
  get_filename_component(root "${root}" DIRECTORY)   # .../lwip-2.1.3
  file(WRITE "${stamp}" "${stamp_content}\n${root}\n")
  message(STATUS "lwIP: verified and unpacked ${_anysock_lwip_orig_name} into ${root}")
  set(${out_var} "${root}" PARENT_SCOPE)
endfunction()

function(anysock_fetch_lwip out_var)
  if(ANYSOCK_LWIP_SOURCE_DIR)
    get_filename_component(root "${ANYSOCK_LWIP_SOURCE_DIR}" ABSOLUTE)
    if(NOT EXISTS "${root}/src/Filelists.cmake" OR NOT EXISTS "${root}/src/include/lwip/init.h")
      message(FATAL_ERROR "ANYSOCK_LWIP_SOURCE_DIR=${root} is not an lwIP 2.1.x tree "
                          "(it needs src/Filelists.cmake and src/include/lwip/init.h)")
    endif()
    message(STATUS "lwIP: using the source tree ANYSOCK_LWIP_SOURCE_DIR=${root}")
  else()
    _anysock_lwip_download(root)
  endif()
  set(${out_var} "${root}" PARENT_SCOPE)
endfunction()
