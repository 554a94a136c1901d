# The forward pass: config parser, CPU reference vs transformers fixtures,
# DF11 == BF16 bit for bit, df11-run.
df11_add_test(test_forward test_forward.c)
target_link_libraries(test_forward PRIVATE PkgConfig::JANSSON)
add_dependencies(test_forward df11-run)
