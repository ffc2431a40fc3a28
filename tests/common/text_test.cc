#include <gtest/gtest.h>

#include "common/net.h"
#include "common/text.h"

namespace berth {
namespace {

TEST(Text, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\xa2"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // cut short
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(Text, EscapeForTerminalKeepsControlCharactersOff) {
  EXPECT_EQ(EscapeForTerminal("train-1"), "train-1");
  EXPECT_EQ(EscapeForTerminal("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(EscapeForTerminal("\x1b]0;pwned\x07\x1b[2J"), "\\e]0;pwned\\x07\\e[2J");
  EXPECT_EQ(EscapeForTerminal("a\nb\rc\td"), "a\\nb\\rc\td");
  EXPECT_EQ(EscapeForTerminal("back\\slash"), "back\\slash");
  EXPECT_EQ(EscapeForTerminal(EscapeForTerminal("a\x1b[2J")), "a\\e[2J");
  EXPECT_EQ(EscapeForTerminal("\x7f\xc2\x9b"), "\\x7F\\u{9B}");  // DEL and the C1 CSI
  EXPECT_EQ(EscapeForTerminal("bad\xff"), "bad\\xFF");
  for (std::string s : {std::string("\x1b"), std::string("x\x9b"), std::string(1, '\0')})
    for (char c : EscapeForTerminal(s))
      EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 && c != '\t');
}

TEST(Text, TruncateUtf8EndsOnACharacter) {
  EXPECT_EQ(TruncateUtf8("abc", 10), "abc");
  EXPECT_EQ(TruncateUtf8("ab\xc3\xa9", 3), "ab");
  EXPECT_EQ(TruncateUtf8("ab\xc3\xa9", 4), "ab\xc3\xa9");
}

TEST(Net, ListenWithoutAHostIsLoopback) {
  std::string host = "10.1.2.3";
  int port = 0;
  ASSERT_TRUE(ParseListen(":7421", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 7421);
  ASSERT_TRUE(ParseListen("0.0.0.0:7422", &host, &port).ok());
  EXPECT_EQ(host, "0.0.0.0");
  ASSERT_TRUE(ParseListen("[::]:7423", &host, &port).ok());
  EXPECT_EQ(host, "::");
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("192.168.1.5"));
}

}  // namespace
}  // namespace berth
