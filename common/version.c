#include "df11.h"

const char *df11_version_string(void)
{
	return DF11_VERSION_STRING;
}

unsigned df11_version_number(void)
{
	return DF11_VERSION_NUMBER;
}
