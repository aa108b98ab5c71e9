// The loss-spike score of kervan train (launcher/train.h): a z-score against the recent losses.
#include <gtest/gtest.h>

#include <cmath>

#include "launcher/train.h"

namespace kervan {

TEST(LossSpikes, NoScoreBeforeTheHistoryIsLongEnough) {
  LossSpikes s(128);
  for (size_t i = 0; i < LossSpikes::kMinHistory; ++i)
    EXPECT_FALSE(s.add(1.0 + 0.1 * (i % 2)).has_value()) << i;
  EXPECT_TRUE(s.add(1.0).has_value());
}

TEST(LossSpikes, ZScoreAgainstTheWindow) {
  LossSpikes s(10);
  // Ten losses alternating 1 and 3: mean 2, standard deviation 1.
  for (int i = 0; i < 10; ++i) s.add(i % 2 ? 3.0 : 1.0);
  const auto z = s.add(8.0);
  ASSERT_TRUE(z.has_value());
  EXPECT_DOUBLE_EQ(*z, 6.0);
  EXPECT_GT(*z, LossSpikes::kWarnZ);
  // The window keeps the last 10: the 8 has entered and the first 1 has left.
  EXPECT_EQ(s.size(), 10u);
  const auto next = s.add(2.0);
  ASSERT_TRUE(next.has_value());
  double mean = 0, var = 0;
  const double w[10] = {3, 1, 3, 1, 3, 1, 3, 1, 3, 8};
  for (double v : w) mean += v / 10;
  for (double v : w) var += (v - mean) * (v - mean) / 10;
  EXPECT_NEAR(*next, (2.0 - mean) / std::sqrt(var), 1e-12);
}

TEST(LossSpikes, ConstantLossesHaveNoScore) {
  LossSpikes s(20);
  for (int i = 0; i < 15; ++i) s.add(2.5);
  EXPECT_FALSE(s.add(2.5).has_value());
}

}  // namespace kervan
