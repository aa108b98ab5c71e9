#include "launcher/plot_cmd.h"

#include <fcntl.h>

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/paths.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

struct Series {
  std::string name;
  // step, tokens (or -1), loss, val_loss (NaN when none), tokens/s
  std::vector<std::array<double, 5>> rows;
  bool has_val = false, has_tokens = false, has_loss = false, has_speed = false;
};

// A kervan metrics file, strictly: every non-blank line a JSON object with an integer "step".
Series read_metrics(const std::string& path) {
  require_file(path, "metrics file");
  std::ifstream in(path);
  if (!in) throw UserError(path + ": cannot open the metrics file");
  Series s;
  s.name = fs::path(path).parent_path().filename().string();
  if (s.name.empty() || s.name == ".") s.name = fs::path(path).stem().string();
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {  // a syntax error, or a number out of range (1e400)
      throw UserError(fmt::format(
          "{}:{}: not JSON (kervan plot reads the JSON-lines metrics of log.metrics_file)", path, n));
    }
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer())
      throw UserError(
          fmt::format("{}:{}: not a kervan metrics line (a JSON object with an integer \"step\")", path, n));
    auto num = [&](const char* key) {
      return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
    };
    const double tokens = num("tokens");
    const double val = num("val_loss");
    s.has_val |= !std::isnan(val);
    s.has_tokens |= !std::isnan(tokens);
    s.has_loss |= std::isfinite(num("loss"));
    s.has_speed |= std::isfinite(num("tokens_per_s"));
    s.rows.push_back({j["step"].get<double>(), tokens, num("loss"), val, num("tokens_per_s")});
  }
  if (s.rows.empty()) throw UserError(path + ": no metrics lines (an empty file)");
  if (!s.has_loss) throw UserError(path + ": no line has a \"loss\" (nothing to plot)");
  return s;
}

std::string gp_string(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return q + "\"";
}

}  // namespace

PlotCommand::PlotCommand(CLI::App& app) {
  cmd_ = app.add_subcommand("plot", "Plot loss and throughput of metrics files (JSON lines) into a PNG");
  cmd_->add_option("metrics", inputs_, "log.metrics_file of one or more runs")->required();
  cmd_->add_option("-o,--out", out_, "The PNG to write")->required();
  cmd_->add_option("--size", size_, "Width x height in pixels (default 1200x900)");
}

int PlotCommand::run() const {
  int width = 0, height = 0;
  char x = 0;
  if (std::sscanf(size_.c_str(), "%d%c%d", &width, &x, &height) != 3 || x != 'x' || width < 200 ||
      height < 200 || width > 10000 || height > 10000)
    throw UserError("--size " + size_ + ": expected WIDTHxHEIGHT, each 200 to 10000 pixels");
  for (const std::string& in : inputs_)
    if (same_file(in, out_)) throw UserError("-o " + out_ + ": is one of the inputs");
  if (fs::path(out_).extension() != ".png")
    throw UserError("-o " + out_ + ": the output must be a .png file");
  const fs::path parent = fs::path(out_).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    throw UserError("-o " + out_ + ": no such folder: " + parent.string());
  std::vector<Series> runs;
  for (const std::string& in : inputs_) runs.push_back(read_metrics(in));
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    throw EnvironmentError("kervan plot", "gnuplot",
                           "it is not installed (scripts/install-deps.sh installs gnuplot-nox)");

  // The data and the script in a temporary folder; gnuplot writes OUT.tmp, renamed when complete.
  char tmpl[] = "/tmp/kervan-plot.XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (!dir) throw EnvironmentError("kervan plot", "/tmp", "cannot create a temporary folder");
  struct Cleanup {
    std::string d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  bool any_val = false, any_tokens = false, any_speed = false;
  // A value a line lacks (or that is not finite) is gnuplot's missing value, in every column.
  const auto cell = [](double v) { return std::isfinite(v) ? fmt::format("{}", v) : std::string("NaN"); };
  for (size_t r = 0; r < runs.size(); ++r) {
    std::ofstream data(fmt::format("{}/run{}.dat", dir, r));
    for (const auto& row : runs[r].rows)
      data << fmt::format("{} {} {} {} {}\n", row[0], cell(row[1]), cell(row[2]), cell(row[3]), cell(row[4]));
    any_val |= runs[r].has_val;
    any_tokens |= runs[r].has_tokens;
    any_speed |= runs[r].has_speed;
  }
  // OUT's temporary, created here first (a fresh name, never a file of the user's): a folder that
  // cannot be written is the user's mistake, named, not a gnuplot failure.
  const std::string tmp_out = out_ + ".kervan-plot-" + std::to_string(::getpid()) + ".tmp";
  {
    const int fd = ::open(tmp_out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) throw_io_error("-o " + out_, "cannot create " + tmp_out, errno);
    ::close(fd);
  }
  struct RemoveTmp {
    std::string path;
    ~RemoveTmp() {
      std::error_code ec;
      fs::remove(path, ec);  // after the rename there is nothing left to remove
    }
  } remove_tmp{tmp_out};
  std::string g;
  g += fmt::format("set terminal pngcairo size {},{} noenhanced font \",10\"\n", width, height);
  g += "set output " + gp_string(tmp_out) + "\n";
  g += "set datafile missing 'NaN'\nset grid\nset key top right\n";
  g += fmt::format("set multiplot layout {},1\n", 1 + (any_tokens ? 1 : 0) + (any_speed ? 1 : 0));
  auto loss_plot = [&](int xcol, const std::string& xlabel) {
    g += "set xlabel " + gp_string(xlabel) + "\nset ylabel \"loss\"\nplot ";
    for (size_t r = 0; r < runs.size(); ++r) {
      const std::string file = gp_string(fmt::format("{}/run{}.dat", dir, r));
      g += fmt::format("{}{} using {}:3 with lines lw 1.5 title {}", r ? ", " : "", file, xcol,
                       gp_string(runs[r].name + " train"));
      if (runs[r].has_val)
        g += fmt::format(", {} using {}:4 with linespoints pt 7 ps 0.8 title {}", file, xcol,
                         gp_string(runs[r].name + " validation"));
    }
    g += "\n";
  };
  g += "set title \"loss\"\n";
  loss_plot(1, "step");
  if (any_tokens) {
    g += "set title \"loss against tokens\"\n";
    loss_plot(2, "tokens");
  }
  if (any_speed) {  // (a run's lines without tokens_per_s, e.g. validation-only lines, are gaps)
    g += "set title \"throughput\"\nset xlabel \"step\"\nset ylabel \"tokens/s\"\nplot ";
    bool first = true;
    for (size_t r = 0; r < runs.size(); ++r) {
      if (!runs[r].has_speed) continue;
      g += fmt::format("{}{} using 1:5 with lines title {}", first ? "" : ", ",
                       gp_string(fmt::format("{}/run{}.dat", dir, r)), gp_string(runs[r].name));
      first = false;
    }
    g += "\n";
  }
  g += "unset multiplot\nset output\n";
  const std::string script = std::string(dir) + "/plot.gp";
  std::ofstream(script) << g;
  const std::string cmd = "gnuplot " + gp_string(script) + " 2>" + gp_string(std::string(dir) + "/err");
  const int rc = std::system(cmd.c_str());
  if (rc != 0 || !fs::exists(tmp_out) || fs::file_size(tmp_out) == 0) {
    std::ifstream err(std::string(dir) + "/err");
    std::string msg((std::istreambuf_iterator<char>(err)), {});
    std::error_code ec;
    fs::remove(tmp_out, ec);
    throw EnvironmentError("kervan plot", "gnuplot", "it failed: " + msg);
  }
  fs::rename(tmp_out, out_);
  std::printf("wrote %s (%dx%d): loss%s%s and throughput of %zu run(s)\n", out_.c_str(), width, height,
              any_val ? " (training and validation)" : "",
              any_tokens ? " against step and tokens" : " against step", runs.size());
  return 0;
}

}  // namespace kervan
