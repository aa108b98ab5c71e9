// Must NOT compile: the loader may read corpora but not see how they are prepared
// (datasets/loader links only datasets/format). tests/CMakeLists.txt builds this file and expects
// the compiler to report the missing header; if it compiles, the layering is not enforced.
#include "datasets/loader/data_loader.h"
#include "datasets/prepare/corpus_writer.h"

int main() { return 0; }
