// The native testbench's clock (sim/harness.v.j2 is the rest): two evaluations a cycle
// until the harness calls $finish. No timing model, no VPI: Verilator's fastest loop.
#include <memory>

#include "Vhgpipe_harness.h"
#include "verilated.h"

int main(int argc, char** argv) {
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    ctx->commandArgs(argc, argv);
    const std::unique_ptr<Vhgpipe_harness> top{new Vhgpipe_harness{ctx.get()}};
    top->clk = 0;
    top->eval();
    while (!ctx->gotFinish()) {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
    }
    top->final();
    return 0;
}
