// Command tioga is the streaming server (placeholder until the server lands).
package main

func main() {}
