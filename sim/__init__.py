"""cocotb verification of hgpipe's generated hardware: stream driver/monitor with random
valid/ready stalls, scoreboard, and a runner that builds the Verilog with Verilator or Icarus."""
