# cmake --install into a temporary prefix, then what an outside program
# sees: the installed files, the exported symbols (exactly the installed
# headers' functions) and the examples/ built through find_package and
# through pkg-config. Not in sanitizer builds: the outside programs are
# built without the sanitizer runtimes.
if(NOT DF11_SANITIZE)
  add_test(NAME test_install
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh
                   ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_install PROPERTIES TIMEOUT 600 RUN_SERIAL ON)
endif()
