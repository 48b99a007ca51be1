# CMAKE_PROJECT_INCLUDE for OpenDHT 4.3.1 (build-jamid.sh, test peer): build against Debian's
# RESTinio 0.6.19 instead of Jami's 0.7.9 (see restinio06/http_parser.h for why).
include_directories(BEFORE "${CMAKE_CURRENT_LIST_DIR}/restinio06")
set_source_files_properties(src/http.cpp src/dht_proxy_client.cpp
    PROPERTIES COMPILE_DEFINITIONS OPENDHT_RESTINIO06_LLHTTP)
# RESTinio 0.6's server (OpenDHT's proxy server) calls http_parser_*()
link_libraries(http_parser)
