// The training progress bar's line (what a terminal shows under the per-step log lines). Drawing,
// and the log lines scrolling above the bar, need a terminal: tests/e2e/progress_bar.sh runs
// training under a pseudo-terminal.
#include <gtest/gtest.h>

#include "launcher/progress.h"

namespace kervan::test {
namespace {

TEST(TrainingBar, LineHasStepPercentRateAndEtaAndFitsTheWidth) {
  // head "step 120/1000 " (14) + tail "  12.0% | 35.2k tok/s | ETA 1:02:03" (35) leave 80 - 1 - 14 -
  // 35 - 2 = 28 cells for the bar; 12% of 28 is 3 full cells, then the arrow.
  const std::string line = training_bar(120, 1000, 35200, 3723, 80);
  std::string want = "step 120/1000 [===>";
  want.append(24, ' ');
  want += "]  12.0% | 35.2k tok/s | ETA 1:02:03";
  EXPECT_EQ(line, want);
  EXPECT_EQ(line.size(), 79u);
  for (const int width : {50, 60, 100, 200, 300}) {
    const std::string l = training_bar(7, 1000, 35200, 3723, width);
    EXPECT_LE(static_cast<int>(l.size()), width - 1) << l;
    EXPECT_NE(l.find("step 7/1000"), std::string::npos) << l;
    EXPECT_NE(l.find("ETA 1:02:03"), std::string::npos) << l;
  }
  EXPECT_EQ(training_bar(7, 1000, 35200, 3723, 300).find('[') + 40 + 1,
            training_bar(7, 1000, 35200, 3723, 300).find(']'))
      << "the bar is at most 40 cells wide";
}

TEST(TrainingBar, NarrowTerminalsDropTheBarNotTheNumbers) {
  EXPECT_EQ(training_bar(120, 1000, 35200, 3723, 40), "step 120/1000  12.0% | 35.2k tok/s | ETA 1:02:03");
}

TEST(TrainingBar, RatesEtaAndTheEnds) {
  EXPECT_EQ(training_bar(0, 10, 0, -1, 30), "step 0/10   0.0% | -- tok/s | ETA --:--");
  EXPECT_EQ(training_bar(10, 10, 812.4, 0, 30), "step 10/10 100.0% | 812 tok/s | ETA 0:00");
  EXPECT_NE(training_bar(5, 10, 2.5e6, 59.6, 80).find("| 2.50M tok/s | ETA 1:00"), std::string::npos);
  const std::string done = training_bar(10, 10, 1000, 0, 80);
  const size_t open = done.find('['), close = done.find(']');
  ASSERT_LT(open, close) << done;
  EXPECT_EQ(done.substr(open + 1, close - open - 1).find_first_not_of('='), std::string::npos)
      << "a finished bar is all '=': " << done;
}

TEST(TrainingBar, ClockText) {
  EXPECT_EQ(clock_text(0), "0:00");
  EXPECT_EQ(clock_text(59.6), "1:00");
  EXPECT_EQ(clock_text(3599), "59:59");
  EXPECT_EQ(clock_text(3723), "1:02:03");
}

}  // namespace
}  // namespace kervan::test
