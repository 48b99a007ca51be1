/* Shim used only while building OpenDHT 4.3.1 for build-jamid.sh (test peer).
 *
 * Jami pins RESTinio 0.7.9; Debian (trixie and sid) only has RESTinio 0.6.19 and no other source
 * of 0.7 is reachable here. RESTinio 0.6 parses HTTP with nodejs' http_parser and its headers
 * include <http_parser.h>. OpenDHT's HTTP client (src/http.cpp, src/dht_proxy_client.cpp) also
 * includes <llhttp.h>, whose enumerators (HTTP_GET..., HPE_*) clash with http_parser's.
 * In those two files only (OPENDHT_RESTINIO06_LLHTTP, set by opendht-restinio06.cmake), this
 * header stands in for http_parser.h with llhttp.h: there RESTinio is only used for its
 * message builders, which need the HTTP_* method ids, numbered identically by llhttp.
 * Everywhere else (the proxy server, built on RESTinio's server) the real http_parser.h is used.
 */
#pragma once
#ifdef OPENDHT_RESTINIO06_LLHTTP
#include <llhttp.h>
#else
#include_next <http_parser.h>
#endif
