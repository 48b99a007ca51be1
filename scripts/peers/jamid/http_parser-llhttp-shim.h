/* http_parser.h -> llhttp shim. Installed as <PREFIX>/include/http_parser.h by build-jamid.sh
 * (test peer only), ahead of /usr/include.
 *
 * Why: Jami pins RESTinio 0.7.9 (which parses HTTP with llhttp); Debian trixie and sid only have
 * RESTinio 0.6.19, which uses nodejs' http_parser, and no other source of 0.7 is reachable here.
 * OpenDHT 4.3.1's public <opendht/http.h> needs llhttp's types (RESTinio 0.7 brings llhttp.h in),
 * and its HTTP client includes <llhttp.h>, whose enumerators (HTTP_GET..., HPE_*) clash with
 * http_parser.h's. So every <http_parser.h> that RESTinio 0.6 includes gets llhttp.h instead, plus
 * the small part of the http_parser API that RESTinio 0.6's server (OpenDHT's proxy server) uses,
 * implemented on llhttp (same method/errno numbering; llhttp is http_parser's successor).
 * Semantics kept: callbacks see http_parser*, data/content_length/method/upgrade/http_major/minor;
 * http_parser_pause() from a callback pauses after it; http_parser_execute() returns the number
 * of bytes parsed and sets http_errno (an upgrade stop reads as HPE_OK, as in http_parser).
 * Not kept: 'nread' (always 0).
 */
#pragma once
#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
typedef enum llhttp_method http_method;

struct http_parser;
typedef int (*http_data_cb)(struct http_parser*, const char* at, size_t length);
typedef int (*http_cb)(struct http_parser*);

struct http_parser_settings {
    http_cb on_message_begin;
    http_data_cb on_url;
    http_data_cb on_status;
    http_data_cb on_header_field;
    http_data_cb on_header_value;
    http_cb on_headers_complete;
    http_data_cb on_body;
    http_cb on_message_complete;
    http_cb on_chunk_header;
    http_cb on_chunk_complete;
};

struct http_parser {
    llhttp_t ll; /* first member: an llhttp_t* from llhttp is this http_parser* */
    /* the public fields of http_parser that users read */
    unsigned int http_errno;
    uint32_t nread;
    uint64_t content_length;
    unsigned int status_code;
    unsigned char method;
    unsigned char upgrade;
    unsigned short http_major;
    unsigned short http_minor;
    void* data;
    /* shim state */
    const http_parser_settings* user;
    int pause_req;
};

namespace http_parser_shim {
inline http_parser* self(llhttp_t* p) { return reinterpret_cast<http_parser*>(p); }
inline void sync(http_parser* h)
{
    h->content_length = h->ll.content_length;
    h->status_code = h->ll.status_code;
    h->method = h->ll.method;
    h->upgrade = h->ll.upgrade;
    h->http_major = h->ll.http_major;
    h->http_minor = h->ll.http_minor;
}
inline int ret(http_parser* h, int rc)
{
    if (rc != 0)
        return -1;
    if (h->pause_req) {
        h->pause_req = 0;
        return HPE_PAUSED;
    }
    return 0;
}
#define HTTP_PARSER_SHIM_CB(name) \
    inline int name(llhttp_t* p) \
    { \
        http_parser* h = self(p); \
        sync(h); \
        return (h->user && h->user->name) ? ret(h, h->user->name(h)) : 0; \
    }
#define HTTP_PARSER_SHIM_DATA_CB(name) \
    inline int name(llhttp_t* p, const char* at, size_t len) \
    { \
        http_parser* h = self(p); \
        sync(h); \
        return (h->user && h->user->name) ? ret(h, h->user->name(h, at, len)) : 0; \
    }
HTTP_PARSER_SHIM_CB(on_message_begin)
HTTP_PARSER_SHIM_DATA_CB(on_url)
HTTP_PARSER_SHIM_DATA_CB(on_status)
HTTP_PARSER_SHIM_DATA_CB(on_header_field)
HTTP_PARSER_SHIM_DATA_CB(on_header_value)
HTTP_PARSER_SHIM_CB(on_headers_complete)
HTTP_PARSER_SHIM_DATA_CB(on_body)
HTTP_PARSER_SHIM_CB(on_message_complete)
HTTP_PARSER_SHIM_CB(on_chunk_header)
HTTP_PARSER_SHIM_CB(on_chunk_complete)
#undef HTTP_PARSER_SHIM_CB
#undef HTTP_PARSER_SHIM_DATA_CB
inline const llhttp_settings_t* settings()
{
    static const llhttp_settings_t s = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_status = on_status;
        s.on_header_field = on_header_field;
        s.on_header_value = on_header_value;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        s.on_chunk_header = on_chunk_header;
        s.on_chunk_complete = on_chunk_complete;
        return s;
    }();
    return &s;
}
} // namespace http_parser_shim

inline void http_parser_settings_init(http_parser_settings* s) { memset(s, 0, sizeof(*s)); }

inline void http_parser_init(http_parser* h, llhttp_type_t type)
{
    void* data = h->data;
    memset(h, 0, sizeof(*h));
    llhttp_init(&h->ll, type, http_parser_shim::settings());
    h->data = data;
}

inline size_t http_parser_execute(http_parser* h, const http_parser_settings* s, const char* data, size_t len)
{
    h->user = s;
    llhttp_errno_t err = llhttp_execute(&h->ll, data, len);
    http_parser_shim::sync(h);
    size_t parsed = len;
    if (err != HPE_OK) {
        const char* pos = llhttp_get_error_pos(&h->ll);
        if (pos >= data && pos <= data + len)
            parsed = (size_t) (pos - data);
    }
    h->http_errno = (err == HPE_PAUSED_UPGRADE) ? HPE_OK : err;
    return parsed;
}

inline void http_parser_pause(http_parser* h, int paused) { h->pause_req = paused; }
inline int http_should_keep_alive(const http_parser* h) { return llhttp_should_keep_alive(&h->ll); }
inline const char* http_errno_name(unsigned int err) { return llhttp_errno_name((llhttp_errno_t) err); }
inline const char* http_errno_description(unsigned int err) { return llhttp_errno_name((llhttp_errno_t) err); }
inline const char* http_method_str(unsigned int m) { return llhttp_method_name((llhttp_method_t) m); }
#define HTTP_PARSER_ERRNO(p) ((unsigned int) (p)->http_errno)
#endif /* __cplusplus */
