// Asio's TLS support compiled once, here (BOOST_ASIO_SEPARATE_COMPILATION): the HTTPS listener.
#include <boost/asio/ssl/impl/src.hpp>
